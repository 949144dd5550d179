"""Archive re-scoring: whole scenes in, georeferenced ships out, crash-safe (needs the serve and geo extras)."""
