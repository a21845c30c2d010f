"""The HTTP API: one Flask app factory and one blueprint per resource."""

from engine.api.app import create_app, get_store

__all__ = ["create_app", "get_store"]
