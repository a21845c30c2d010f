"""GET /dashboard: attribution at a glance, for the merchant.

The page itself holds no data and needs no key to load: it asks for the dataset group's secret
key in a form, keeps it in the tab's sessionStorage only, and fetches ``/v1/metrics`` with it
from the page. So the dashboard is exactly as protected as the API, with no session cookies to
manage, and its charts are inline SVG drawn by a few lines of script (no external libraries).
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

bp = Blueprint("dashboard", __name__, template_folder="templates")


@bp.get("/dashboard")
def dashboard() -> Response:
    response = Response(render_template("dashboard.html"), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    # The page runs only its own inline script and talks only to this server.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:; form-action 'self'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
