"""The KServe Python SDK's v2 REST client against a running shipdet server: server and model health, then one
inference of an encoded tile (BYTES input), printing what it got. KServe 0.21 pins pandas<3 and psutil<6, which
would downgrade the project's own, so it runs from a venv of its own:

    python -m venv /tmp/kserve && /tmp/kserve/bin/pip install kserve==0.21.0 pillow
    /tmp/kserve/bin/python bench/kserve_sdk.py http://127.0.0.1:8000 [--api-key KEY]

`tests/serve/test_kserve_sdk.py` runs it against a live server where SHIPDET_KSERVE_PYTHON names that venv's python.
"""

from __future__ import annotations

import argparse
import asyncio
import io

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from PIL import Image


async def check(url: str, model: str, api_key: str | None) -> None:
    headers = {"X-API-Key": api_key} if api_key else None
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    try:
        print("server live", await client.is_server_live(url, headers=headers))
        print("server ready", await client.is_server_ready(url, headers=headers))
        print("model ready", await client.is_model_ready(url, model, headers=headers))
        encoded = io.BytesIO()
        Image.fromarray(np.full((256, 256, 3), 90, np.uint8)).save(encoded, "PNG")
        tile = InferInput("images", [1], "BYTES")
        tile.set_data_from_numpy(np.array([encoded.getvalue()], dtype=object))
        answer = await client.infer(url, InferRequest(model_name=model, infer_inputs=[tile]), model_name=model,
                                    headers=headers)
        print("outputs", ", ".join(f"{o.name} {o.datatype} {o.shape}" for o in answer.outputs))
    finally:
        await client.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--model", default="shipdet-default")
    ap.add_argument("--api-key")
    args = ap.parse_args()
    asyncio.run(check(args.url, args.model, args.api_key))


if __name__ == "__main__":
    main()
