"""API keys: `X-API-Key` or `Authorization: Bearer`, compared in constant time against every key."""

from __future__ import annotations

import hmac

from fastapi import Request

from shipdet.serve.errors import ApiError


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_key(presented: str | None, keys: list[str]) -> bool:
    if not keys:
        return True
    if presented is None:
        return False
    ok = False
    for key in keys:  # no early exit: the time does not tell which key nearly matched
        ok |= hmac.compare_digest(presented.encode(), key.encode())
    return ok


async def require_api_key(request: Request) -> None:
    keys: list[str] = request.app.state.api_keys
    if not check_key(presented_key(request), keys):
        raise ApiError(401, "unauthorized", "missing or wrong API key",
                       {"hint": "send X-API-Key: <key> or Authorization: Bearer <key>"},
                       headers={"WWW-Authenticate": "Bearer"})
