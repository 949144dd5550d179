#!/bin/sh
# Container health: ready means the model is loaded and warmed up and the service is not draining.
exec curl -fsS "http://127.0.0.1:${SHIPDET_SERVE_PORT:-8000}/readyz" >/dev/null
