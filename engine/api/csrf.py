"""CSRF tokens for server-rendered forms (the demo storefront's "Add to cart" and "Place order").

A signed double-submit token: the browser holds a random value in an HttpOnly, SameSite cookie, and
every form carries HMAC-SHA256(key, that value) under a key derived from the server's master key.
A POST must bring both and they must agree. Another site can make a browser send the cookie, but it
cannot read it or compute the HMAC, so it cannot forge the form field; the cookie alone, or a token
from another browser, is refused. A missing token is a 400 (the form is incomplete), a wrong one a
403.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Response, g, request

from engine.api.signing import app_key, signature
from engine.errors import Forbidden, InvalidInput

COOKIE = "shelfwise_csrf"
FIELD = "csrf_token"
_ISSUED = "shelfwise_csrf_issued"


def _key() -> bytes:
    return app_key("csrf")


def _sign(nonce: str) -> str:
    return signature(_key(), nonce.encode())


def csrf_token() -> str:
    """The token for this browser's forms; issues the cookie (see :func:`issue_cookie`) if it has none."""
    nonce = request.cookies.get(COOKIE) or g.get(_ISSUED)
    if not nonce:
        nonce = g.setdefault(_ISSUED, secrets.token_urlsafe(32))
    return _sign(nonce)


def issue_cookie(response: Response) -> Response:
    """``after_request``: send the cookie a page's token was made from, when it was new."""
    nonce = g.get(_ISSUED)
    if nonce:
        response.set_cookie(COOKIE, nonce, httponly=True, samesite="Lax", secure=request.is_secure)
    return response


def check_csrf() -> None:
    """``before_request``: refuse a state-changing request without a matching token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    nonce = request.cookies.get(COOKIE)
    token = request.form.get(FIELD)
    if not nonce or not token:
        raise InvalidInput("this form has no CSRF token (or cookies are off): reload the page and submit it again")
    if not hmac.compare_digest(_sign(nonce).encode(), token.encode()):
        raise Forbidden("this form's CSRF token does not match: reload the page and submit it again")
