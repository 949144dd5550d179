"""API keys: `X-API-Key` or `Authorization: Bearer`, compared in constant time against every key."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict, deque
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

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


class FailedAttempts:
    """Wrong or missing keys per client address over the last minute; a client past the limit is refused (429)
    before its key is even compared, so guessing costs a minute per `limit` tries. Bounded memory: the oldest
    clients are forgotten first."""

    WINDOW_S = 60.0

    def __init__(self, limit: int, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.max_clients = max_clients
        self.by_client: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> float | None:
        """Seconds until the client may try again, or None when it may now (a client that never failed costs a
        dictionary lookup: this runs on every request)."""
        times = self.by_client.get(client)
        if times is None:
            return None
        now = time.monotonic()
        while times and now - times[0] > self.WINDOW_S:
            times.popleft()
        return self.WINDOW_S - (now - times[0]) if len(times) >= self.limit else None

    def record(self, client: str) -> None:
        times = self.by_client.setdefault(client, deque())
        self.by_client.move_to_end(client)
        times.append(time.monotonic())
        while len(self.by_client) > self.max_clients:
            self.by_client.popitem(last=False)


# Declared for the OpenAPI schema (clients and generators see how to authenticate); the check below reads the
# headers itself, as it also accepts `Authorization: Bearer`.
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                              description="An API key (or `Authorization: Bearer <key>`); needed when keys are set.")


async def require_api_key(request: Request, _: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
    keys: list[str] = request.app.state.api_keys
    if not keys:
        return
    failures: FailedAttempts = request.app.state.failed_keys
    client = request.client.host if request.client else "unknown"
    wait = failures.retry_after(client)
    if wait is not None:
        raise ApiError(429, "too_many_failed_keys", "too many wrong or missing API keys from this address",
                       {"retry_after_s": round(wait, 1)}, headers={"Retry-After": str(max(1, round(wait)))})
    if not check_key(presented_key(request), keys):
        failures.record(client)
        raise ApiError(401, "unauthorized", "missing or wrong API key",
                       {"hint": "send X-API-Key: <key> or Authorization: Bearer <key>"},
                       headers={"WWW-Authenticate": "Bearer"})


async def require_key_for_operations(request: Request) -> None:
    """/metrics and the schema: open without keys, or when `protect_operations` is off."""
    if request.app.state.protect_operations:
        await require_api_key(request)
