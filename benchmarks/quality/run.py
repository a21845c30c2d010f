"""Quality benchmark: every recipe and the baselines, one protocol, two data sets, one table.

    python -m benchmarks.quality [--folds 10] [--datasets ml-latest-small sample-store] [--json]

Each model is trained on 90% of the users of each fold and asked what its campaign would be
asked for the other 10% (engine.evaluation: the oldest 90% of a test user's events are the live
input, the newest 10% the truth), with Personalize's metric names. The baselines, measured in
the same run on the same folds: popularity-count, plain implicit ALS with its defaults, item-kNN
(cosine) and EASE. The run ends with each target, PASS or FAIL, and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchmarks.quality.datasets import DATASETS
from engine.evaluation.baselines import EASE, ItemKNN, PlainALS
from engine.evaluation.protocol import evaluate, evaluate_kinds, query_kind
from engine.recipes import RECIPES
from engine.recipes.base import TrainingData

BASELINES = ("popularity-count", "plain-als", "item-knn", "ease")
#: The user-personalization variant shown for transparency: seen items always left out, as the
#: baselines do, so its gain from learning repeats can be told apart from the rest.
NO_REPEATS = "user-personalization (seen left out)"
COLUMNS = (
    ("coverage", "cov"),
    ("mean_reciprocal_rank_at_25", "mrr@25"),
    ("normalized_discounted_cumulative_gain_at_5", "ndcg@5"),
    ("normalized_discounted_cumulative_gain_at_10", "ndcg@10"),
    ("normalized_discounted_cumulative_gain_at_25", "ndcg@25"),
    ("precision_at_5", "p@5"),
    ("precision_at_10", "p@10"),
    ("precision_at_25", "p@25"),
)
SEGMENT_COLUMNS = (("coverage", "cov"), ("hits_at_1_percent", "hits@1%"), ("recall_at_1_percent", "recall@1%"))


@dataclass
class Row:
    model: str
    kind: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    note: str | None = None


def entries(learned: list[bool]) -> list[tuple[str, Callable[[TrainingData], object], tuple[str, ...]]]:
    """(name, factory, query kinds): every registered recipe as its campaign is asked, and the
    baselines both by user and by the latest item. ``learned`` collects, per fold, whether
    user-personalization found repeats worth showing."""
    out: list[tuple[str, Callable[[TrainingData], object], tuple[str, ...]]] = []
    up = RECIPES["user-personalization"]

    def personalization(d: TrainingData):
        model = up().fit(d)
        learned.append(model.repeats.enabled and len(model.calibration.hit_rates) > 0)
        return model

    for name, cls in RECIPES.items():
        factory = personalization if cls is up else (lambda d, cls=cls: cls().fit(d))
        out.append((name, factory, (query_kind(cls.recipe_type),)))
    out.append((NO_REPEATS, lambda d: up(learn_repeats=False).fit(d), ("user",)))
    for cls in (PlainALS, ItemKNN, EASE):
        out.append((cls.name, lambda d, cls=cls: cls().fit(d), ("user", "related")))
    return out


def run_dataset(data: TrainingData, *, folds: int, seed: int, log: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    learned: list[bool] = []
    for name, factory, kinds in entries(learned):
        if name == NO_REPEATS and learned and not any(learned) and (same := find(rows, "user-personalization", "user")):
            # No fold learned any repeats, so leaving seen items out is what the recipe already did:
            # the same model, the same answers. Not trained a second time.
            rows.append(Row(name, "user", dict(same), 0.0, note="same model: no repeats learned"))
            log(f"  {name:<40} same as user-personalization (no repeats learned)")
            continue
        started = time.perf_counter()
        try:
            if kinds == ("segment",):
                results = {"segment": evaluate(data, factory, kind="segment", seed=seed)}
            else:
                results = evaluate_kinds(data, factory, kinds=kinds, folds=folds, seed=seed)
        except Exception as exc:  # one broken model must not hide every other figure
            rows += [Row(name, kind, error=f"{type(exc).__name__}: {exc}") for kind in kinds]
            log(f"  {name:<40} error: {exc}")
            continue
        seconds = time.perf_counter() - started
        for kind, result in results.items():
            rows.append(Row(name, kind, result.metrics, seconds))
        log(f"  {name:<40} {seconds:6.1f}s")
    return rows


def find(rows: Sequence[Row], model: str, kind: str) -> dict[str, float] | None:
    return next((r.metrics for r in rows if r.model == model and r.kind == kind and not r.error), None)


@dataclass(frozen=True)
class Target:
    dataset: str
    text: str
    value: float | None
    threshold: float | None
    strict: bool = False

    @property
    def passed(self) -> bool:
        if self.value is None or self.threshold is None:
            return False
        return self.value > self.threshold if self.strict else self.value >= self.threshold


def targets(dataset: str, rows: Sequence[Row]) -> list[Target]:
    ndcg, precision = "normalized_discounted_cumulative_gain_at_10", "precision_at_10"
    up = find(rows, "user-personalization", "user") or {}
    baselines = [m for b in BASELINES if (m := find(rows, b, "user"))]
    popularity = find(rows, "popularity-count", "user") or {}
    plain = find(rows, "plain-als", "user") or {}
    knn = find(rows, "item-knn", "related") or {}
    out = []
    for metric, label in ((ndcg, "NDCG@10"), (precision, "precision@10")):
        best = max((m[metric] for m in baselines), default=None)
        out.append(
            Target(
                dataset,
                f"user-personalization {label} >= 1.05 x best baseline",
                up.get(metric),
                None if best is None else 1.05 * best,
            )
        )
        pop = popularity.get(metric)
        out.append(
            Target(
                dataset,
                f"user-personalization {label} >= 2 x popularity-count",
                up.get(metric),
                None if pop is None else 2 * pop,
            )
        )
    out.append(Target(dataset, "user-personalization coverage >= plain ALS", up.get("coverage"), plain.get("coverage")))
    for recipe in ("sims", "similar-items"):
        if recipe not in RECIPES:
            continue
        mine = find(rows, recipe, "related") or {}
        for metric, label in ((ndcg, "NDCG@10"), (precision, "precision@10")):
            out.append(
                Target(
                    dataset,
                    f"{recipe} {label} > item-kNN (related items)",
                    mine.get(metric),
                    knn.get(metric),
                    strict=True,
                )
            )
    return out


def table(dataset: str, data: TrainingData, rows: Sequence[Row], folds: int) -> str:
    header = f"{dataset}: {len(data):,} events, {data.n_users:,} users, {data.n_items:,} items; {folds} fold(s)"
    lines = [header, "=" * len(header)]
    head = f"{'model':<38} {'query':<8}" + "".join(f"{short:>9}" for _, short in COLUMNS) + f"{'seconds':>9}"
    lines += [head, "-" * len(head)]
    segments = []
    for row in rows:
        if row.kind == "segment":
            segments.append(row)
            continue
        label = f"{row.model:<38} {row.kind:<8}"
        if row.error:
            lines.append(f"{label} error: {row.error}")
        else:
            figures = "".join(f"{row.metrics[k]:>9.4f}" for k, _ in COLUMNS)
            lines.append(label + figures + (f"  ({row.note})" if row.note else f"{row.seconds:>9.1f}"))
    if segments:
        lines += ["", f"{'segment recipe':<38} " + "".join(f"{short:>11}" for _, short in SEGMENT_COLUMNS)]
        for row in segments:
            if row.error:
                lines.append(f"{row.model:<38}  error: {row.error}")
            else:
                lines.append(f"{row.model:<38} " + "".join(f"{row.metrics[k]:>11.4f}" for k, _ in SEGMENT_COLUMNS))
    return "\n".join(lines)


def describe(target: Target) -> str:
    value = "n/a" if target.value is None else f"{target.value:.4f}"
    threshold = "n/a" if target.threshold is None else f"{target.threshold:.4f}"
    sign = ">" if target.strict else ">="
    return f"{'PASS' if target.passed else 'FAIL'}  {target.dataset:<16} {target.text:<52} {value} {sign} {threshold}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10, help="folds of 10%% of users (default 10: every user once)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--json", action="store_true", help="print the figures and targets as JSON")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report, all_targets, tables = {}, [], []
    for dataset in args.datasets:
        log(f"{dataset}: loading")
        data = DATASETS[dataset]()
        rows = run_dataset(data, folds=args.folds, seed=args.seed, log=log)
        tables.append(table(dataset, data, rows, args.folds))
        found = targets(dataset, rows)
        all_targets += found
        report[dataset] = {
            "events": len(data),
            "users": data.n_users,
            "items": data.n_items,
            "rows": [
                {
                    "model": r.model,
                    "query": r.kind,
                    "seconds": round(r.seconds, 2),
                    "error": r.error,
                    "note": r.note,
                    "metrics": {k: round(v, 6) for k, v in r.metrics.items()},
                }
                for r in rows
            ],
        }
    if args.json:
        report["targets"] = [
            {"dataset": t.dataset, "target": t.text, "value": t.value, "threshold": t.threshold, "pass": t.passed}
            for t in all_targets
        ]
        print(json.dumps(report, indent=2))
    else:
        print("\n\n".join(tables))
        print("\ntargets")
        print("\n".join(describe(t) for t in all_targets))
    return 0 if all(t.passed for t in all_targets) else 1


if __name__ == "__main__":
    sys.exit(main())
