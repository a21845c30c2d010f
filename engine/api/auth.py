"""API keys: a public, read-only key for widgets (bound to the store's origins) and secret keys.

Keys arrive as ``Authorization: Bearer <key>`` or ``X-Api-Key: <key>``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request

from engine.errors import Forbidden, Unauthorized
from engine.storage import ApiKeyInfo

#: What a public key may do; everything else needs a secret key.
PUBLIC_SCOPES = frozenset({"recommend", "events"})


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-Api-Key")


def origin_allowed(key: ApiKeyInfo, origin: str | None) -> bool:
    """A public key with listed origins answers only pages on those origins (and server-side
    callers, which send no Origin); an empty list means any origin."""
    if key.kind != "public" or not key.allowed_origins or origin is None:
        return True
    return origin.rstrip("/") in key.allowed_origins


def require_key(scope: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            from engine.api.app import get_store

            presented = _presented_key()
            if not presented:
                raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
            key = get_store().authenticate_key(presented)
            if key.kind == "public" and scope not in PUBLIC_SCOPES:
                raise Forbidden("a public key cannot do this: use a secret key")
            if not origin_allowed(key, request.headers.get("Origin")):
                raise Forbidden(f"origin {request.headers.get('Origin')!r} is not allowed for this key")
            g.api_key = key
            return view(*args, **kwargs)

        return wrapped

    return decorator


def current_key() -> ApiKeyInfo:
    return g.api_key
