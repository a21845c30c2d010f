"""CORS for widget calls from store pages.

Preflights carry no key, so they are answered for any origin; the real request is then refused
(403, and no Access-Control-Allow-Origin) unless the key's origins include the page's origin.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from engine.api.auth import origin_allowed


def enable_cors(bp: Blueprint) -> None:
    @bp.after_request
    def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin is None:
            return response
        key = g.get("api_key")
        # A missing or bad key (401) reveals nothing, so the page may read why it was refused;
        # a key used from a foreign origin (403) gets no CORS headers: that is the refusal.
        readable = request.method == "OPTIONS" or response.status_code == 401
        if readable or (key is not None and origin_allowed(key, origin)):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Api-Key"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
        return response
