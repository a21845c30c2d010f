"""Training speed, end to end: ``python -m benchmarks.training [--sizes 1M,5M,25M]``.

Synthetic power-law interactions (:mod:`benchmarks.synthetic`; sizes 1M and 5M by default, 25M
opt-in) are loaded into a real SQLite store, with a catalog of items. Measured, each in its own
subprocess (wall time and the process's peak resident memory):

* the baseline: a bare ``implicit`` ``AlternatingLeastSquares`` fit (64 factors, 10 iterations,
  single-threaded BLAS) on the same weighted user × item matrix, built from the same store before
  the clock starts;
* FULL training through :func:`engine.jobs.train.train` (the store read, the fit, the saved
  artifact) for user-personalization (64 factors, 10 iterations, like the baseline) and sims;
* UPDATE training of each after 1% new users and 1% new items (with their events) are added.

Each FULL starts from a cold store read (the columnar training snapshot, engine.jobs.snapshot, is
removed first); each UPDATE reads the snapshot its solution's FULL left plus the new rows, as a
scheduled UPDATE in production does.

Offline metrics (GetSolutionMetrics, ``SHELFWISE_TRAINING_METRICS``) cost about one more
training: they are left out of the timed FULL (``metrics=False``); ``--metrics`` times a FULL
with them as an extra row. Targets on 2 cores: FULL within 2x the bare fit at 1M and 5M; 25M
FULL under 240 s within 4 GB; UPDATE under a tenth of FULL.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.synthetic import CATEGORIES, power_law_interactions

GROUP = "bench"
RECIPES = ("user-personalization", "sims")
HYPERPARAMETERS = {"user-personalization": {"factors": 64, "iterations": 10}, "sims": {}}
FULL_RATIO = 2.0
LARGE_SECONDS, LARGE_BYTES = 240.0, 4 * 1024**3
UPDATE_SHARE = 0.1


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def shape(n: int) -> tuple[int, int]:
    """(users, items) for ``n`` interactions: 20 events per shopper on average, a catalog of a
    tenth as many items as events (at most 200,000)."""
    return max(1000, n // 20), min(max(1000, n // 10), 200_000)


# --------------------------------------------------------------------- the store
def build_store(path: Path, n: int, seed: int = 1) -> None:
    """A SQLite store with ``n`` interactions and the catalog, written with bulk inserts into the
    tables the Store creates (the ingest API's per-record path would dominate the run)."""
    from engine.storage import Store

    n_users, n_items = shape(n)
    store = Store(f"sqlite:///{path}")
    store.create_dataset_group(GROUP)
    group = store.get_dataset_group(GROUP).id
    store.close()
    users, items, kinds, stamps = power_law_interactions(n_users, n_items, n, seed=seed)
    _insert(path, group, users, items, kinds, stamps, item_ids=range(n_items), bulk=True)


def prepare_store(db: Path, base: Path, n: int) -> bool:
    """A fresh store of ``n`` interactions at ``db``: a copy of ``base`` when an earlier run with
    the same ``--workdir`` left one (building 25M takes about three minutes), else built and
    kept as ``base``. True when copied. The base is only ever copied, never trained on."""
    db.unlink(missing_ok=True)
    if not base.is_file():
        partial = base.with_name(base.name + ".partial")
        partial.unlink(missing_ok=True)
        build_store(partial, n)
        with sqlite3.connect(partial) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the one file
        partial.replace(base)
        for leftover in ("-wal", "-shm"):  # emptied by the checkpoint
            partial.with_name(partial.name + leftover).unlink(missing_ok=True)
        shutil.copyfile(base, db)
        return False
    shutil.copyfile(base, db)
    return True


def add_new_users_and_items(path: Path, n: int, seed: int = 2) -> tuple[int, int, int]:
    """1% new shoppers and 1% new items: the new shoppers' events, over old and new items, after
    everything already stored."""
    n_users, n_items = shape(n)
    new_users, new_items = max(1, n_users // 100), max(1, n_items // 100)
    users, items, kinds, stamps = power_law_interactions(new_users, n_items + new_items, max(1, n // 100), seed=seed)
    with sqlite3.connect(path) as db:
        group = db.execute("SELECT id FROM dataset_groups WHERE name = ?", (GROUP,)).fetchone()[0]
    later = stamps + 91 * 86400
    _insert(path, group, users + n_users, items, kinds, later, item_ids=range(n_items, n_items + new_items))
    return new_users, new_items, len(users)


#: Interactions converted and inserted at a time (bounds the Python strings alive at once).
INSERT_ROWS = 1_000_000


def _insert(path: Path, group: int, users, items, kinds, stamps, *, item_ids, bulk: bool = False) -> None:
    """Insert the catalogue and the events. ``bulk`` (a new store): the interactions' indexes are
    dropped first and built again afterwards, from sorted keys, instead of updated row by row with
    random keys (25M rows took 46 minutes with them in place)."""
    now = time.time()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA synchronous = OFF")
        db.executemany(
            "INSERT INTO items (dataset_group_id, item_id, properties, updated_at) VALUES (?, ?, ?, ?)",
            ((group, f"i{i}", json.dumps({"CATEGORY_L1": f"c{i % CATEGORIES}"}), now) for i in item_ids),
        )
        indexes = []
        if bulk:
            indexes = db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'interactions'"
                " AND sql IS NOT NULL"
            ).fetchall()
            for name, _ in indexes:
                db.execute(f'DROP INDEX "{name}"')
        for lo in range(0, len(users), INSERT_ROWS):
            part = slice(lo, lo + INSERT_ROWS)
            rows = zip(
                np.char.add("u", users[part].astype(str)).tolist(),
                np.char.add("i", items[part].astype(str)).tolist(),
                kinds[part].tolist(),
                stamps[part].tolist(),
                strict=True,
            )
            db.executemany(
                "INSERT INTO interactions (dataset_group_id, user_id, item_id, event_type, timestamp)"
                " VALUES (?, ?, ?, ?, ?)",
                ((group, u, i, k, t) for u, i, k, t in rows),
            )
        for _, sql in indexes:
            db.execute(sql)


# --------------------------------------------------------------------- one measurement (child)
def measure(kind: str, db: str, artifacts: str, recipe: str, metrics: bool) -> dict:
    """Run one measurement in this process; the parent runs each in a fresh one."""
    from engine.storage import Store

    store = Store(f"sqlite:///{db}")
    if kind == "bare":
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        from engine.jobs.train import load_training_data
        from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, event_weights, user_item_matrix

        data = load_training_data(store, GROUP)
        weights = event_weights(data.event_types, data.event_values, data.timestamps, weights=DEFAULT_EVENT_WEIGHTS)
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(factors=64, iterations=10, regularization=1.0, alpha=5.0, random_state=42)
            started = time.perf_counter()
            model.fit(matrix, show_progress=False)
            seconds = time.perf_counter() - started
        detail = f"{matrix.shape[0]:,} users × {matrix.shape[1]:,} items, {matrix.nnz:,} non-zeros"
    else:
        # Libraries the recipes import on first use: a process's start-up cost (a serving process
        # has them after its first training), imported before the clock as the bare fit's are.
        import implicit.als
        import implicit.nearest_neighbours  # noqa: F401
        import scipy.linalg  # noqa: F401

        from engine.jobs.snapshot import snapshot_directory
        from engine.jobs.train import train

        if kind == "full":
            # A FULL is timed from a cold read of the store: without this, the second recipe's FULL
            # would read the columnar snapshot the first one left (as production would) and look
            # cheaper than a first training is. An UPDATE reads the snapshot, as it does in production.
            shutil.rmtree(snapshot_directory(artifacts, GROUP), ignore_errors=True)
        started = time.perf_counter()
        version = train(
            store,
            artifacts,
            dataset_group=GROUP,
            recipe=recipe,
            solution=recipe,
            mode=kind,
            hyperparameters=HYPERPARAMETERS[recipe],
            metrics=metrics,
        )
        seconds = time.perf_counter() - started
        detail = f"{version.num_interactions:,} interactions"
    store.close()
    return {"seconds": seconds, "peak_bytes": peak_resident_bytes(), "detail": detail}


def peak_resident_bytes() -> int:
    """This process's peak resident memory. On Linux from ``VmHWM``: ``ru_maxrss`` of a child
    process reports at least its parent's peak when it was started (Linux copies the high-water
    mark into the fork and keeps it across exec), and this benchmark's parent builds the stores."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def run_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.training", "--measure", *args], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(f"measurement {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------- the run (parent)
def run_size(n: int, workdir: Path, with_metrics: bool, log) -> list[dict]:
    db = workdir / f"train-{n}.db"
    artifacts = workdir / f"artifacts-{n}"
    shutil.rmtree(artifacts, ignore_errors=True)
    started = time.perf_counter()
    reused = prepare_store(db, workdir / f"base-{n}.db", n)
    n_users, n_items = shape(n)
    built = time.perf_counter() - started
    how = "copied from the kept base store" if reused else "built"
    log(f"\n{n:,} interactions ({n_users:,} shoppers, {n_items:,} items): store {how} in {built:.0f}s")
    rows = []

    def record(name: str, kind: str, recipe: str = "", metrics: bool = False) -> dict:
        out = run_child(kind, str(db), str(artifacts), recipe or "-", "1" if metrics else "0")
        out |= {"size": n, "name": name}
        rows.append(out)
        log(f"  {name:<44} {out['seconds']:8.1f}s  peak {out['peak_bytes'] / 1024**2:7.0f} MB  ({out['detail']})")
        return out

    bare = record("bare implicit ALS fit (baseline)", "bare")
    full = {r: record(f"{r} FULL", "full", r) for r in RECIPES}
    if with_metrics:
        record("user-personalization FULL + offline metrics", "full", "user-personalization", metrics=True)
    new_users, new_items, new_events = add_new_users_and_items(db, n)
    log(f"  added {new_users:,} new shoppers and {new_items:,} new items ({new_events:,} events)")
    update = {r: record(f"{r} UPDATE", "update", r) for r in RECIPES}
    for r in RECIPES:
        ratio = full[r]["seconds"] / bare["seconds"]
        full[r]["ratio"] = ratio
        if n >= 25_000_000:
            ok = full[r]["seconds"] < LARGE_SECONDS and full[r]["peak_bytes"] < LARGE_BYTES
            full[r]["target"] = f"< {LARGE_SECONDS:.0f}s within 4 GB"
        else:
            ok = ratio <= FULL_RATIO
            full[r]["target"] = f"≤ {FULL_RATIO:.0f}x bare"
        full[r]["pass"] = ok
        share = update[r]["seconds"] / full[r]["seconds"]
        update[r] |= {"ratio": share, "target": f"< {UPDATE_SHARE:.1f}x FULL", "pass": share < UPDATE_SHARE}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1M,5M", help="interaction counts, comma-separated (default 1M,5M; 25M opt-in)"
    )
    parser.add_argument("--metrics", action="store_true", help="also time a FULL that stores offline metrics")
    parser.add_argument(
        "--workdir",
        help="where the stores and artifacts go (default: a temporary directory); a base store kept there by"
        " an earlier run of the same size is copied instead of built again",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--measure", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        kind, db, artifacts, recipe, metrics = args.measure
        print(json.dumps(measure(kind, db, artifacts, recipe, metrics == "1")))
        return 0
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    log = (lambda _: None) if args.json else (lambda line: print(line, flush=True))
    metrics = "timed as an extra row" if args.metrics else "not included in FULL (metrics=False)"
    log(f"training benchmark on {os.cpu_count()} cores; offline metrics {metrics}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for n in sizes:
            rows += run_size(n, workdir, args.metrics, log)
    judged = [r for r in rows if "pass" in r]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("\ntargets:")
        for r in judged:
            verdict = "PASS" if r["pass"] else "FAIL"
            print(
                f"  {r['size']:>12,}  {r['name']:<28} {r['seconds']:7.1f}s  {r['ratio']:5.2f}x  (target {r['target']})"
                f"  {verdict}"
            )
    return 0 if all(r["pass"] for r in judged) else 1


if __name__ == "__main__":
    sys.exit(main())
