# shipdet tile service on a CUDA GPU: onnxruntime-gpu, the serving extra only (no torch), non-root.
#   docker build -t shipdet .
#   docker run --gpus all -p 8000:8000 -e SHIPDET_SERVE_API_KEYS='["change-me"]' shipdet   # the bundled model
#   docker run --gpus all -p 8000:8000 -v $PWD/mymodel:/models -e SHIPDET_SERVE_MODEL=/models/m.onnx \
#       -e SHIPDET_SERVE_API_KEYS='["change-me"]' shipdet
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    ORT_DISABLE_TELEMETRY=1 SHIPDET_CACHE_DIR=/var/cache/shipdet
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv curl \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY shipdet ./shipdet
# onnxruntime-gpu instead of onnxruntime: never both (they overwrite each other). Versions: pyproject.toml.
# hadolint ignore=DL3013
RUN pip install '.[serve-core,gpu]' \
    && useradd --system --uid 10001 --home /app shipdet \
    && mkdir -p /var/cache/shipdet && chown shipdet /var/cache/shipdet

USER 10001
EXPOSE 8000
# Listening on 0.0.0.0 needs an API key (SHIPDET_SERVE_API_KEYS or a mounted SHIPDET_SERVE_API_KEYS_FILE).
ENV SHIPDET_SERVE_HOST=0.0.0.0 SHIPDET_SERVE_PORT=8000 SHIPDET_SERVE_PROVIDERS='["tensorrt","cuda","cpu"]'
# hadolint ignore=DL3025
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/readyz || exit 1
STOPSIGNAL SIGTERM
CMD ["shipdet", "serve"]
