"""Standard Webhooks signatures, the scheme BigCommerce signs its callbacks with.

https://www.standardwebhooks.com (and platforms.md §6): headers ``webhook-id``, ``webhook-timestamp``
(Unix seconds) and ``webhook-signature``, a space-separated list of ``v1,<base64 HMAC-SHA256>`` over
``"{id}.{timestamp}.{raw body}"``. Several signatures appear while a secret is being rotated, so any
one matching is enough. The timestamp is signed too, which is what makes rejecting old timestamps
meaningful: a captured delivery cannot be replayed later with a fresh one.

The key: BigCommerce's Python sample hands ``base64(client_secret)`` to the ``standardwebhooks``
library, which base64-decodes it again, so the HMAC key is the app's client secret itself. A secret
written in Standard Webhooks' own form (``whsec_<base64>``) is decoded the same way the library does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from adapters.base import Delivery, SignatureError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
#: Standard Webhooks' recommended tolerance for clock skew and delay, in seconds.
DEFAULT_TOLERANCE_S = 300
_SECRET_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    if secret.startswith(_SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
        except binascii.Error as exc:
            raise SignatureError("the connection's whsec_ secret is not valid base64") from exc
    return secret.encode("utf-8")


def sign(msg_id: str, timestamp: int | str, body: bytes, secret: str) -> str:
    """The ``webhook-signature`` value for one delivery (public, so tests produce genuine ones)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _header(delivery: Delivery, name: str) -> str:
    value = str(delivery.headers.get(name) or "").strip()
    if not value:
        raise SignatureError(f"missing {name} header")
    return value


def verify(delivery: Delivery, secret: str, *, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S) -> None:
    """Raise :class:`SignatureError` unless one ``v1`` signature matches and the timestamp is fresh."""
    msg_id = _header(delivery, ID_HEADER)
    timestamp = _header(delivery, TIMESTAMP_HEADER)
    received = _header(delivery, SIGNATURE_HEADER)
    if not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} {timestamp[:40]!r} is not Unix seconds")
    skew = now - int(timestamp)
    if abs(skew) > tolerance_s:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {abs(skew):.0f} s {'old' if skew > 0 else 'in the future'}; "
            f"more than {tolerance_s:.0f} s is refused as a possible replay"
        )
    expected = sign(msg_id, timestamp, delivery.body, secret).encode("ascii")
    for candidate in received.split():
        if hmac.compare_digest(expected, candidate.encode("utf-8")):
            return
    raise SignatureError(f"no {SIGNATURE_HEADER} matches the body (wrong secret or altered body)")
