"""`shipdet review`: the evidence behind a re-scoring run's detections and counts, in a browser; corrections."""
