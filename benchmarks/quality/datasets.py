"""The two data sets of the quality benchmark, read in place (never copied into the repository)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from engine.demo.sample_store import generate_sample_store
from engine.errors import InvalidInput
from engine.evaluation.data import training_data
from engine.recipes.base import TrainingData
from engine.records import Item

#: MovieLens ratings of 4 and above count as positive events.
POSITIVE_RATING = 4.0
#: The sample store's clock: fixed so every run of the benchmark sees the same data.
SAMPLE_STORE_NOW = 1_764_288_000.0


def data_dir() -> Path:
    """``$SHELFWISE_DATA_DIR``, else ``../shared/data`` beside the repository."""
    override = os.environ.get("SHELFWISE_DATA_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def movielens(directory: Path | None = None) -> TrainingData:
    """ml-latest-small: ratings >= 4 as ``rating`` events (the rating as EVENT_VALUE), movies with
    their title (text) and genres (categorical, ``|``-separated) as the items dataset."""
    root = (directory or data_dir()) / "ml-latest-small"
    ratings_path = root / "ratings.csv"
    if not ratings_path.exists():
        raise InvalidInput(f"MovieLens not found at {root} (set SHELFWISE_DATA_DIR)")
    ratings = np.genfromtxt(ratings_path, delimiter=",", skip_header=1, dtype=np.float64)
    ratings = ratings[ratings[:, 2] >= POSITIVE_RATING]
    items = []
    with (root / "movies.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            genres = "" if row["genres"] == "(no genres listed)" else row["genres"]
            items.append(Item(row["movieId"], {"TITLE": row["title"], "GENRES": genres}))
    return TrainingData.from_columns(
        [str(int(u)) for u in ratings[:, 0]],
        [str(int(m)) for m in ratings[:, 1]],
        np.full(len(ratings), "rating"),
        ratings[:, 3],
        ratings[:, 2],
        items={i.item_id: i for i in items},
    )


def sample_store() -> TrainingData:
    """The generated shop the demo uses (seed 7, 300 items, 2,000 shoppers), at a fixed date."""
    store = generate_sample_store(now=SAMPLE_STORE_NOW)
    return training_data(store.interactions, store.items, store.users)


DATASETS = {"ml-latest-small": movielens, "sample-store": sample_store}
