"""Synthetic store data for benchmarks: power-law shoppers and items, as real stores have."""

from __future__ import annotations

import numpy as np

CATEGORIES = 20


def power_law_interactions(
    n_users: int, n_items: int, n_interactions: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user index, item index, event type, timestamp) arrays of about ``n_interactions`` events.

    Shopper activity is Pareto-distributed and item popularity Zipf-like, and each shopper
    leans to a few categories, so there is structure for a model to learn.
    """
    rng = np.random.default_rng(seed)
    activity = rng.pareto(1.6, n_users) + 1.0
    activity = np.maximum(1, np.round(activity / activity.sum() * n_interactions)).astype(np.int64)
    users = np.repeat(np.arange(n_users), activity)[:n_interactions]
    n = len(users)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    rng.shuffle(popularity)
    category_of_item = np.arange(n_items) % CATEGORIES
    favourite = rng.integers(0, CATEGORIES, n_users)
    in_favourite = rng.random(n) < 0.7
    items = rng.choice(n_items, size=n, p=popularity / popularity.sum())
    # Move 70% of events into the shopper's favourite category, keeping the popularity shape.
    shift = (favourite[users] - category_of_item[items]) % CATEGORIES
    items = np.where(in_favourite, (items + shift) % n_items, items)
    kinds = np.where(rng.random(n) < 0.1, "purchase", np.where(rng.random(n) < 0.2, "add-to-cart", "view"))
    timestamps = 1_700_000_000 + rng.integers(0, 90 * 86400, size=n).astype(np.float64)
    return users, items, kinds, timestamps
