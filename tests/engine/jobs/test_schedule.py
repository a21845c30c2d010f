"""Scheduled retraining on a real store (SQLite and PostgreSQL): what is due, what runs, what the
campaigns serve afterwards, failures, and the leases that keep two schedulers apart."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.jobs.leases import Lease
from engine.jobs.retention import prune_versions
from engine.jobs.schedule import (
    FULL,
    SCHEDULER_LEASE,
    UPDATE,
    RetrainPolicy,
    Scheduler,
    deployments,
    parse_duration,
)
from engine.jobs.train import train
from engine.records import Interaction, Item
from engine.storage import Store
from engine.storage import tables as t

HOUR = 3600.0
DAY = 86400.0
UP = {"factors": 8, "iterations": 4, "model": "als", "learn_repeats": False}


class Clock:
    """Time that tests move by hand; starts at the real now (versions carry real creation times)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_offline_metrics(monkeypatch):
    # FULL training also scores the recipe on held-out users; that is tested elsewhere and only slows these.
    monkeypatch.setenv("SHELFWISE_TRAINING_METRICS", "0")


def shop(store: Store) -> str:
    """A small dataset group (its name unique: the PostgreSQL database is shared by the session)."""
    group = f"shop-{uuid.uuid4().hex[:8]}"
    store.create_dataset_group(group)
    rng = np.random.default_rng(0)
    records: list = []
    for u in range(40):
        prefix = "a" if u % 2 == 0 else "b"
        for k in range(6):
            records.append(Interaction(f"u{u}", f"{prefix}{rng.integers(0, 12)}", "view", 1_700_000_000 + u * 100 + k))
    records += [Item(f"{p}{n}", {"CATEGORY": p}) for p in "ab" for n in range(12)]
    store.ingest(group, records)
    return group


def deploy(store: Store, artifacts: Path, group: str, solution: str, recipe: str, hp=None, config=None) -> str:
    version = train(store, artifacts, dataset_group=group, recipe=recipe, solution=solution, hyperparameters=hp)
    store.create_campaign(f"{solution}-campaign", version.id, config)
    return version.id


def versions(store: Store, group: str, solution: str) -> list[tuple[str, str]]:
    info = store.get_solution(group, solution)
    with store.session() as s:
        rows = s.execute(
            t.SolutionVersion.__table__.select()
            .where(t.SolutionVersion.solution_id == info.id)
            .order_by(t.SolutionVersion.created_at)
        ).all()
    return [(r.id, r.training_mode) for r in rows]


def test_durations_parse_and_bad_ones_are_refused():
    assert parse_duration("30m") == 1800
    assert parse_duration("2h") == 7200
    assert parse_duration("7d") == 7 * DAY
    assert parse_duration("1w") == 7 * DAY
    assert parse_duration("45s") == parse_duration("45") == 45
    assert parse_duration("1.5h") == 5400
    assert parse_duration("0") == 0
    for bad in ("", "2x", "h", "-1h", "2 hours", "1h30m"):
        with pytest.raises(InvalidInput, match="invalid duration"):
            parse_duration(bad)
    assert RetrainPolicy(update_every=0, full_every=0).enabled is False


def test_update_runs_when_due_and_the_campaign_moves_keeping_its_config(store, tmp_path):
    group = shop(store)
    first = deploy(store, tmp_path, group, "recs", "user-personalization", UP, {"excludeInteracted": False})
    clock = Clock()
    scheduler = Scheduler(store, tmp_path, RetrainPolicy(update_every=2 * HOUR, full_every=7 * DAY), clock=clock)

    clock.now += 1.9 * HOUR
    assert scheduler.run_due() == []  # not due yet
    assert store.get_campaign(group, "recs-campaign").solution_version_id == first

    clock.now += 0.2 * HOUR
    [outcome] = scheduler.run_due()
    assert outcome.error is None and outcome.mode == UPDATE and outcome.campaigns == ["recs-campaign"]
    campaign = store.get_campaign(group, "recs-campaign")
    assert campaign.solution_version_id == outcome.version_id != first
    assert campaign.config == {"excludeInteracted": False}
    assert versions(store, group, "recs") == [(first, "FULL"), (outcome.version_id, "UPDATE")]

    # The new version starts the next interval (it carries the real time, behind this test's clock).
    [d] = deployments(store, group)
    assert d.last_version == store.get_solution_version(outcome.version_id).created_at
    assert scheduler.due_mode(d, now=d.last_version + 1.9 * HOUR) is None
    assert scheduler.due_mode(d, now=d.last_version + 2 * HOUR) == UPDATE
    # A restarted server (a fresh scheduler, the real clock) reads its state from the store: nothing due.
    assert Scheduler(store, tmp_path, scheduler.policy).due() == []


def test_a_campaign_pinned_with_sync_false_stays_on_its_version(store, tmp_path):
    group = shop(store)
    first = deploy(store, tmp_path, group, "recs", "user-personalization", UP, {"syncWithLatestSolutionVersion": False})
    store.create_campaign("follows", first, {"syncWithLatestSolutionVersion": True})
    clock = Clock()
    scheduler = Scheduler(store, tmp_path, RetrainPolicy(update_every=2 * HOUR, full_every=7 * DAY), clock=clock)
    clock.now += 2.1 * HOUR
    [outcome] = scheduler.run_due()
    assert outcome.error is None and outcome.campaigns == ["follows"]
    assert store.get_campaign(group, "recs-campaign").solution_version_id == first
    assert store.get_campaign(group, "follows").solution_version_id == outcome.version_id != first


def test_full_runs_when_due_and_recipes_without_update_get_only_full(store, tmp_path):
    group = shop(store)
    deploy(store, tmp_path, group, "recs", "user-personalization", UP)
    popular = deploy(store, tmp_path, group, "popular", "popularity-count")
    clock = Clock()
    scheduler = Scheduler(store, tmp_path, RetrainPolicy(update_every=2 * HOUR, full_every=7 * DAY), clock=clock)

    clock.now += 3 * HOUR  # UPDATE due for user-personalization; popularity-count has no UPDATE
    [outcome] = scheduler.run_due()
    assert (outcome.solution, outcome.mode) == ("recs", UPDATE)
    assert store.get_campaign(group, "popular-campaign").solution_version_id == popular

    clock.now += 7 * DAY  # FULL due for both; it wins over the UPDATE that is due too
    outcomes = sorted(scheduler.run_due(), key=lambda o: o.solution)
    assert [(o.solution, o.mode, o.error) for o in outcomes] == [("popular", FULL, None), ("recs", FULL, None)]
    for o in outcomes:
        assert store.get_campaign(group, f"{o.solution}-campaign").solution_version_id == o.version_id
    assert [mode for _, mode in versions(store, group, "recs")] == ["FULL", "UPDATE", "FULL"]
    assert [mode for _, mode in versions(store, group, "popular")] == ["FULL", "FULL"]


def test_sims_gets_update_trainings_on_schedule(store, tmp_path):
    group = shop(store)
    first = deploy(store, tmp_path, group, "also", "sims")
    clock = Clock()
    scheduler = Scheduler(store, tmp_path, RetrainPolicy(update_every=2 * HOUR, full_every=7 * DAY), clock=clock)
    clock.now += 3 * HOUR
    [outcome] = scheduler.run_due()
    assert (outcome.solution, outcome.mode, outcome.error) == ("also", UPDATE, None)
    assert store.get_campaign(group, "also-campaign").solution_version_id == outcome.version_id != first


def test_domain_recommenders_are_retrained_and_undeployed_solutions_are_not(store, tmp_path):
    from engine.serving.recommenders import create_recommender, recommender_deployment

    group = shop(store)
    create_recommender(store, tmp_path, group, "popular", "aws-ecomm-popular-items-by-views")
    train(store, tmp_path, dataset_group=group, recipe="popularity-count", solution="on-the-shelf")
    [d] = deployments(store, group)
    assert (d.solution, d.campaigns, d.recommenders) == ("recommender-popular", (), ("popular",))

    clock = Clock()
    clock.now += 7 * DAY + 1
    [outcome] = Scheduler(store, tmp_path, RetrainPolicy(), clock=clock).run_due()
    assert (outcome.solution, outcome.mode, outcome.error) == ("recommender-popular", FULL, None)
    assert recommender_deployment(store, group, "popular").solution_version_id == outcome.version_id


def test_a_failing_training_is_logged_retried_later_and_stops_nothing_else(store, tmp_path, caplog):
    group = shop(store)
    broken = deploy(store, tmp_path, group, "broken", "user-personalization", UP)
    deploy(store, tmp_path, group, "fine", "user-personalization", UP)
    Path(store.get_solution_version(broken).artifact_path).unlink()  # UPDATE starts from this model
    clock = Clock()
    scheduler = Scheduler(store, tmp_path, RetrainPolicy(update_every=2 * HOUR, full_every=7 * DAY), clock=clock)

    clock.now += 2 * HOUR + 1
    with caplog.at_level(logging.INFO, logger="engine.jobs.schedule"):
        outcomes = {o.solution: o for o in scheduler.run_due()}
    assert outcomes["broken"].error and outcomes["broken"].version_id is None
    assert outcomes["fine"].error is None
    assert store.get_campaign(group, "broken-campaign").solution_version_id == broken
    assert store.get_campaign(group, "fine-campaign").solution_version_id == outcomes["fine"].version_id
    assert any("broken" in r.message and "failed" in r.message for r in caplog.records if r.levelname == "ERROR")

    assert "broken" not in {o.solution for o in scheduler.run_due()}  # not retried at every pass...
    clock.now += 15 * 60
    again = {o.solution: o for o in scheduler.run_due()}  # ...but after a while
    assert again["broken"].error and store.get_campaign(group, "broken-campaign").solution_version_id == broken


def test_a_solution_another_process_holds_is_skipped_until_its_lease_lapses(store, tmp_path):
    group = shop(store)
    first = deploy(store, tmp_path, group, "recs", "user-personalization", UP)
    clock = Clock()
    scheduler = Scheduler(store, tmp_path, RetrainPolicy(update_every=2 * HOUR, full_every=0), clock=clock)
    clock.now += 2 * HOUR + 1  # due, but another server is training it right now
    other = Lease(store, f"retrain:{group}/recs", holder="another-server", ttl=60, clock=clock)
    assert other.acquire()
    assert scheduler.run_due() == []
    assert store.get_campaign(group, "recs-campaign").solution_version_id == first

    clock.now += 61  # the other server died: its lease lapses and this one takes over
    [outcome] = scheduler.run_due()
    assert outcome.error is None and outcome.mode == UPDATE


def test_two_schedulers_at_once_train_a_due_solution_once(store, tmp_path):
    group = shop(store)
    deploy(store, tmp_path, group, "recs", "user-personalization", UP)
    # The real clock here: the second scheduler must see the version the first one just made as new.
    time.sleep(1.05)
    stores = [Store(store.database_url) for _ in range(2)]  # two servers: separate engines and pools
    schedulers = [Scheduler(s, tmp_path, RetrainPolicy(update_every=1.0, full_every=0)) for s in stores]
    barrier = threading.Barrier(2)
    results: list = []

    def run(scheduler: Scheduler) -> None:
        barrier.wait()
        results.extend(scheduler.run_due())

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for s in stores:
        s.close()
    assert len(results) == 1 and results[0].error is None
    assert [mode for _, mode in versions(store, group, "recs")] == ["FULL", "UPDATE"]


def test_leases_are_exclusive_renewable_and_lapse(store):
    clock = Clock()
    name = f"job-{uuid.uuid4().hex[:8]}"
    a = Lease(store, name, holder="a", ttl=10, clock=clock)
    b = Lease(store, name, holder="b", ttl=10, clock=clock)
    assert a.acquire() and a.acquire()  # taking it again renews it
    assert not b.acquire() and not b.renew()
    clock.now += 8
    assert a.renew()
    clock.now += 8
    assert not b.acquire()  # renewed 8 s ago: still a's
    clock.now += 3
    assert b.acquire()  # lapsed
    assert not a.renew()  # a learns it lost it
    b.release()
    assert a.acquire()


def test_only_one_scheduler_loop_leads_and_another_takes_over_when_it_stops(store, tmp_path):
    policy = RetrainPolicy(update_every=2.0, full_every=0)  # polls every half second
    loops = [Scheduler(Store(store.database_url), tmp_path, policy, dataset_group="none") for _ in range(2)]
    stops = [threading.Event(), threading.Event()]

    def holder() -> str | None:
        with store.session() as s:
            row = s.get(t.Lease, SCHEDULER_LEASE)
            return row.holder if row is not None and row.expires_at > time.time() else None

    def wait_for(expected: str) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if holder() == expected:
                return True
            time.sleep(0.05)
        return False

    threads = [threading.Thread(target=s.run_forever, args=(stop,)) for s, stop in zip(loops, stops, strict=True)]
    threads[0].start()
    assert wait_for(loops[0].holder)
    threads[1].start()
    time.sleep(1.2)  # a couple of the second loop's passes
    assert holder() == loops[0].holder
    stops[0].set()
    threads[0].join(10)
    assert wait_for(loops[1].holder)  # released on stop: taken over at the next pass
    stops[1].set()
    threads[1].join(10)
    for s in loops:
        s.store.close()


def test_old_model_files_are_archived_keeping_the_newest_and_what_campaigns_serve(store, tmp_path):
    group = shop(store)
    first = deploy(store, tmp_path, group, "recs", "popularity-count")
    clock = Clock()
    scheduler = Scheduler(store, tmp_path, RetrainPolicy(update_every=0, full_every=HOUR, keep_versions=2), clock=clock)
    made = [first]
    for _ in range(3):
        clock.now = max(clock.now, time.time()) + 1.01 * HOUR
        [outcome] = scheduler.run_due()
        assert outcome.error is None
        made.append(outcome.version_id)

    def files_and_statuses(kept: set[str]) -> None:
        statuses = dict(store.solution_version_ids(group, "recs"))
        for version_id in made:
            assert Path(store.get_solution_version(version_id).artifact_path).is_file() == (version_id in kept)
            assert (statuses[version_id] == "ARCHIVED") == (version_id not in kept)

    files_and_statuses({made[-1], made[-2]})  # the newest two; the campaign serves the newest
    with pytest.raises(InvalidInput, match="is archived: retention removed its model file"):
        store.create_campaign("again", first, None)

    # A version a campaign serves keeps its file however old it gets.
    store.create_campaign("pinned", made[-2], None)
    made.append(train(store, tmp_path, dataset_group=group, recipe="popularity-count", solution="recs").id)
    store.create_campaign("recs-campaign", made[-1], None, replace=True)
    assert prune_versions(store, group, "recs", keep=1) == [made[-2]]  # the one before the newest, now unserved
    files_and_statuses({made[-1], made[-3]})
