"""Voyage counting: port calls from detections, with bounds for what was not observed."""
