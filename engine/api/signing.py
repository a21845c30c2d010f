"""Keys and signatures for what the API hands out and takes back (click links, form tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app

from engine.crypto import derived_key


def app_key(purpose: str) -> bytes:
    """This app's key for one purpose, derived from the master key once per process."""
    name = f"shelfwise.key.{purpose}"
    key = current_app.extensions.get(name)
    if key is None:
        key = current_app.extensions[name] = derived_key(current_app.config["SHELFWISE"], purpose)
    return key


def signature(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 of ``message``, URL-safe base64 without padding (it travels in URLs and forms)."""
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
