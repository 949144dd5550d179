"""The inference engine and the HTTP tile service (onnxruntime + FastAPI; no torch on this path)."""
