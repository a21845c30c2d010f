"""The composition root: ``create_app`` wires storage, serving and every blueprint together.

Set-up happens here and only here, never at import time or on a first request. Blueprints from
layers above the engine (the webhook intake) arrive through the ``shelfwise.blueprints`` entry
point group, so the engine never imports them.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from flask import Flask, current_app

from engine.config import Settings, load_settings
from engine.serving.campaigns import CampaignService
from engine.storage import Store

log = logging.getLogger(__name__)

STORE_KEY = "shelfwise.store"
SERVICE_KEY = "shelfwise.campaigns"


def create_app(settings: Settings | None = None, *, store: Store | None = None, **overrides: Any) -> Flask:
    """Build a Flask app; ``settings`` default to the environment, ``overrides`` win over both."""
    settings = settings or load_settings(**overrides)
    app = Flask(__name__)
    app.config["SHELFWISE"] = settings
    # Flask answers 413 on its own for bodies over this (webhooks, imports through the API).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False

    store = store or Store(settings.database_url)
    app.extensions[STORE_KEY] = store
    app.extensions[SERVICE_KEY] = CampaignService(
        store,
        live_history_limit=settings.live_history_limit,
        exploration_refresh_seconds=settings.exploration_refresh_seconds,
    )

    from engine.api import (
        clicks,
        dashboard,
        demo,
        errors,
        events,
        metrics,
        recommendations,
        solutions,
        widget,
        widgets_html,
    )
    from engine.api.personalize import events as personalize_events
    from engine.api.personalize import runtime as personalize_runtime

    errors.init_app(app)
    app.register_blueprint(recommendations.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(widget.bp)
    app.register_blueprint(demo.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(solutions.bp)
    app.register_blueprint(widgets_html.bp)
    app.register_blueprint(clicks.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(personalize_runtime.bp)
    app.register_blueprint(personalize_events.bp)
    for plugin in entry_points(group="shelfwise.blueprints"):
        plugin.load()(app)
        log.debug("registered blueprint plugin %s", plugin.name)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def get_store() -> Store:
    return current_app.extensions[STORE_KEY]


def get_campaigns() -> CampaignService:
    return current_app.extensions[SERVICE_KEY]
