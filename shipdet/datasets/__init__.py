"""Converters from published ship datasets to YOLO training sets, a synthetic scene generator, merge and stats."""
