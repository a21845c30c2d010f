"""Serves the embeddable ``widget.js`` (no dependencies) with caching headers."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

bp = Blueprint("widget", __name__)

STATIC = Path(__file__).parent / "static"


@bp.get("/widget.js")
def widget_js():
    response = send_from_directory(STATIC, "widget.js", mimetype="application/javascript", max_age=300)
    response.headers["Access-Control-Allow-Origin"] = "*"  # a script any store page may load
    return response
