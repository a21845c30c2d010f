"""The baseline: a naive per-request ``implicit`` path, served the same way as Shelfwise.

Per request it reads the shopper's events, builds their interaction row and calls
``model.recommend(0, row, N, recalculate_user=True)``, which solves the ALS user step from
scratch (recomputing YᵀY) every time; purchased items are dropped with ``filter_items``.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
from flask import Flask, request
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from engine.recipes import recipe_class
from engine.recipes.weighting import event_weights
from engine.storage import Store


def create_app() -> Flask:
    store = Store(os.environ["NAIVE_DATABASE_URL"], create=False)
    model = recipe_class("user-personalization").load(os.environ["NAIVE_ARTIFACT"])
    hp = model.hyperparameters
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=model.item_factors.shape[1], regularization=hp["regularization"], alpha=hp["alpha"]
        )
    als.item_factors = model.item_factors
    group = os.environ["NAIVE_DATASET_GROUP"]
    app = Flask(__name__)

    @app.post("/recommendations")
    def recommend():
        body = request.get_json()
        events = store.latest_events(group, body["userId"], 500)
        known = [(model.item_index(e.item_id), e) for e in events]
        known = [(i, e) for i, e in known if i is not None]
        idx = np.array([i for i, _ in known], dtype=np.int64)
        w = event_weights(
            np.array([e.event_type for _, e in known], dtype=str),
            np.full(len(known), np.nan),
            np.zeros(len(known)),
            weights=hp["event_weights"],
        )
        row = sp.csr_matrix(
            (w.astype(np.float32), (np.zeros(len(idx), dtype=np.int64), idx)), shape=(1, len(model.item_ids))
        )
        purchased = np.array([i for i, e in known if e.event_type == "purchase"], dtype=np.int64)
        with threadpool_limits(1, "blas"):
            ids, scores = als.recommend(
                0,
                row,
                N=body.get("numResults", 25),
                recalculate_user=True,
                filter_already_liked_items=True,
                filter_items=purchased if len(purchased) else None,
            )
        return {
            "itemList": [{"itemId": model.item_ids[i], "score": float(s)} for i, s in zip(ids, scores, strict=True)]
        }

    return app
