"""Shelfwise engine: storage, recipes, training, serving and the HTTP API.

The engine knows nothing of e-commerce platforms or webhooks; those layers sit above it and
hand it plain records (:mod:`engine.records`).
"""

__version__ = "0.1.0"
