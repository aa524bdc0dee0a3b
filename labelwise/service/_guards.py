"""Request guards in front of every route: bearer-token auth and a cap on body size."""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from ..core import Settings, api_key

__all__ = ["OPEN_PATHS", "BearerAuthMiddleware", "BodyLimitMiddleware"]

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


async def send_json_error(
    send: Send, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BearerAuthMiddleware:
    """Refuses requests without ``Authorization: Bearer $LABELWISE_API_KEY`` with 401.

    The key is read from the environment on each request, so it is never copied into objects
    that might be logged; when the variable is unset or empty, auth is off.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = api_key()
        if scope["type"] != "http" or not key or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode()):
            await self.app(scope, receive, send)
            return
        message = "missing or wrong API key: send 'Authorization: Bearer <key>'"
        await send_json_error(send, 401, message, ((b"www-authenticate", b"Bearer"),))


class BodyLimitMiddleware:
    """Answers 413 to a body over ``LABELWISE_MAX_BODY_BYTES`` before any of it is read.

    The size is taken from Content-Length; a body sent without one (chunked) gets 411, since
    its size is only known after reading it all.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.max_bytes = Settings.from_env().max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is None and b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            await send_json_error(send, 411, "send the body with a Content-Length header")
            return
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            message = (
                f"request body of {int(declared)} bytes is over the limit of {self.max_bytes} "
                "(LABELWISE_MAX_BODY_BYTES); send fewer or shorter texts"
            )
            await send_json_error(send, 413, message)
            return
        await self.app(scope, receive, send)
