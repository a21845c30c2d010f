"""GET /v1/metrics: attribution figures for a dataset group (secret key only: revenue is private)."""

from __future__ import annotations

import time

from flask import Blueprint, request

from engine.api.app import get_store
from engine.api.auth import current_key, require_key
from engine.errors import InvalidInput
from engine.storage.attribution import DEFAULT_WINDOW_SECONDS, attribution_report, parse_time

bp = Blueprint("metrics", __name__, url_prefix="/v1")

DAY = 86400.0


@bp.get("/metrics")
@require_key("metrics")
def get_metrics():
    """``from``/``to``: ISO 8601 or epoch seconds (default: the last 7 days); ``groupBy``:
    campaign | recommender | widget; ``windowHours``: the last-click attribution window (24)."""
    now = time.time()
    end = parse_time(request.args.get("to"), now)
    start = parse_time(request.args.get("from"), end - 7 * DAY)
    try:
        window = float(request.args.get("windowHours", DEFAULT_WINDOW_SECONDS / 3600)) * 3600
    except ValueError:
        raise InvalidInput("windowHours must be a number") from None
    report = attribution_report(
        get_store(),
        current_key().dataset_group,
        start=start,
        end=end,
        group_by=request.args.get("groupBy", "campaign"),
        window_seconds=window,
    )
    response = report.as_dict()
    return response
