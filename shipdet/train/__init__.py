"""Training, evaluation and ONNX export (needs the `train` extra: torch, ultralytics, albumentations)."""
