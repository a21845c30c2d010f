"""Scheduled retraining: every deployed solution gets UPDATE training every so often (new items and
users folded in) and FULL training less often, and its campaigns move to the new version.

What is due is worked out from the store alone (the creation times of each solution's versions),
so a restart neither forgets the schedule nor retrains at once, and trainings run by hand count
too. Each training runs under a lease on its solution (engine/jobs/leases.py), so two servers, a
server and a cron job, or N gunicorn workers never train the same solution at once; ``shelfwise
serve`` runs the loop in one separate process, and only the process that holds the scheduler
lease acts. A failed training is logged and retried later; it stops nothing else.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select

from engine.config import Settings
from engine.errors import InvalidInput, ShelfwiseError
from engine.jobs.leases import Clock, Lease, process_holder
from engine.storage import Store
from engine.storage import tables as t

log = logging.getLogger(__name__)

FULL, UPDATE = "full", "update"
#: Recipes whose UPDATE training folds new items and users into the previous model (sims adjusts
#: only the similarities the new events change: engine/recipes/sims_update.py). Personalize allows
#: UPDATE only for User-Personalization; the others would simply train from scratch, so they get
#: their FULL training on schedule and no UPDATE.
UPDATE_RECIPES = frozenset({"user-personalization", "personalized-ranking", "sims"})
#: The lease that makes one process, among all servers on a database, run the schedule.
SCHEDULER_LEASE = "retrain-scheduler"
#: How long a lease outlives a holder that stopped renewing it (killed, frozen, cut off).
LEASE_SECONDS = 60.0
#: A failed training is tried again after this long (or after its interval, if shorter).
RETRY_SECONDS = 900.0

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``30m``, ``2h``, ``7d`` (also ``s`` and ``w``; a bare number is seconds); 0 = off."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise InvalidInput(f"invalid duration {text!r}: use a number with s, m, h, d or w (30m, 2h, 7d), or 0")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds < 0:
        raise InvalidInput(f"invalid duration {text!r}: it cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds <= 0:
        return "off"
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class RetrainPolicy:
    """How often each deployed solution is retrained, in seconds; 0 turns that kind off."""

    update_every: float = 2 * 3600.0
    full_every: float = 7 * 86400.0
    #: Model files kept per solution after a scheduled training (engine.jobs.retention); 0 keeps all.
    keep_versions: int = 5

    @classmethod
    def from_settings(
        cls, settings: Settings, *, update_every: float | None = None, full_every: float | None = None
    ) -> RetrainPolicy:
        """Explicit values (command-line flags) win over ``SHELFWISE_RETRAIN_*``."""

        def env(value: str, name: str) -> float:
            try:
                return parse_duration(value)
            except InvalidInput as exc:
                raise InvalidInput(f"SHELFWISE_{name.upper()}: {exc.message}") from None

        return cls(
            update_every=update_every
            if update_every is not None
            else env(settings.retrain_update_every, "retrain_update_every"),
            full_every=full_every if full_every is not None else env(settings.retrain_full_every, "retrain_full_every"),
            keep_versions=settings.retrain_keep_versions,
        )

    @property
    def enabled(self) -> bool:
        return self.update_every > 0 or self.full_every > 0

    @property
    def poll_seconds(self) -> float:
        """How often the loop looks: a fraction of the shortest interval, at most a minute."""
        intervals = [s for s in (self.update_every, self.full_every) if s > 0]
        return min(60.0, max(0.25, min(intervals) / 4)) if intervals else 60.0

    def describe(self) -> str:
        return f"UPDATE every {format_duration(self.update_every)}, FULL every {format_duration(self.full_every)}"


@dataclass(frozen=True)
class Deployment:
    """A solution that serves: through campaigns, or as a recommender (its newest version serves)."""

    dataset_group: str
    solution: str
    recipe: str
    campaigns: tuple[str, ...]
    recommenders: tuple[str, ...]
    last_version: float
    last_full: float | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.dataset_group, self.solution)

    def next_due(self, policy: RetrainPolicy) -> dict[str, float | None]:
        """When each kind of training falls due (epoch seconds; None: never)."""
        full = None
        if policy.full_every > 0:
            full = (self.last_full if self.last_full is not None else 0.0) + policy.full_every
        update = None
        if policy.update_every > 0 and self.recipe in UPDATE_RECIPES:
            # Any newer version, FULL or UPDATE, already holds the new items.
            update = self.last_version + policy.update_every
        return {FULL: full, UPDATE: update}


@dataclass
class Outcome:
    """One training the scheduler ran (or tried to)."""

    dataset_group: str
    solution: str
    recipe: str
    mode: str
    version_id: str | None = None
    campaigns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "datasetGroup": self.dataset_group,
            "solution": self.solution,
            "recipe": self.recipe,
            "trainingMode": self.mode.upper(),
            "solutionVersionId": self.version_id,
            "campaigns": self.campaigns,
            "seconds": round(self.seconds, 3),
            **({"error": self.error} if self.error else {}),
        }


def deployments(store: Store, dataset_group: str | None = None) -> list[Deployment]:
    """Every solution that a campaign or a recommender serves, with its versions' latest times."""
    group_filter = [t.DatasetGroup.name == dataset_group] if dataset_group else []
    with store.session() as s:
        campaign_rows = s.execute(
            select(t.Solution.id, t.Campaign.name)
            .join(t.SolutionVersion, t.SolutionVersion.id == t.Campaign.solution_version_id)
            .join(t.Solution, t.Solution.id == t.SolutionVersion.solution_id)
            .join(t.DatasetGroup, t.DatasetGroup.id == t.Solution.dataset_group_id)
            .where(*group_filter)
            .order_by(t.Campaign.name)
        ).all()
        recommender_rows = s.execute(
            select(t.Solution.id, t.Recommender.name)
            .join(
                t.Solution,
                (t.Solution.dataset_group_id == t.Recommender.dataset_group_id)
                & (t.Solution.name == t.Recommender.solution),
            )
            .join(t.DatasetGroup, t.DatasetGroup.id == t.Solution.dataset_group_id)
            .where(*group_filter)
            .order_by(t.Recommender.name)
        ).all()
        ids = {row[0] for row in campaign_rows} | {row[0] for row in recommender_rows}
        if not ids:
            return []
        is_full = t.SolutionVersion.training_mode == "FULL"
        rows = s.execute(
            select(
                t.Solution.id,
                t.DatasetGroup.name,
                t.Solution.name,
                t.Solution.recipe,
                func.max(t.SolutionVersion.created_at),
                func.max(case((is_full, t.SolutionVersion.created_at), else_=None)),
            )
            .join(t.DatasetGroup, t.DatasetGroup.id == t.Solution.dataset_group_id)
            .join(t.SolutionVersion, t.SolutionVersion.solution_id == t.Solution.id)
            .where(t.Solution.id.in_(ids))
            .group_by(t.Solution.id, t.DatasetGroup.name, t.Solution.name, t.Solution.recipe)
            .order_by(t.DatasetGroup.name, t.Solution.name)
        ).all()
    out = []
    for solution_id, group, name, recipe, last_version, last_full in rows:
        out.append(
            Deployment(
                dataset_group=group,
                solution=name,
                recipe=recipe,
                campaigns=tuple(c for sid, c in campaign_rows if sid == solution_id),
                recommenders=tuple(r for sid, r in recommender_rows if sid == solution_id),
                last_version=float(last_version),
                last_full=None if last_full is None else float(last_full),
            )
        )
    return out


#: Campaign config (Personalize's CampaignConfig field): False pins a campaign to its version, so
#: scheduled retraining leaves it where it was put; absent or True, it follows each new version.
SYNC_SETTING = "syncWithLatestSolutionVersion"


def campaigns_of(store: Store, dataset_group: str, solution: str) -> list[str]:
    """The campaigns serving some version of ``solution`` right now that follow new versions (read
    again after training: one moved elsewhere meanwhile must stay where it was put)."""
    with store.session() as s:
        rows = s.execute(
            select(t.Campaign.name, t.Campaign.config)
            .join(t.SolutionVersion, t.SolutionVersion.id == t.Campaign.solution_version_id)
            .join(t.Solution, t.Solution.id == t.SolutionVersion.solution_id)
            .join(t.DatasetGroup, t.DatasetGroup.id == t.Solution.dataset_group_id)
            .where(t.DatasetGroup.name == dataset_group, t.Solution.name == solution)
            .order_by(t.Campaign.name)
        ).all()
    return [name for name, config in rows if (config or {}).get(SYNC_SETTING, True) is not False]


class Scheduler:
    """Runs due trainings for every deployed solution of one database.

    ``clock`` is injectable so tests can move time; leases and due times both read it.
    """

    def __init__(
        self,
        store: Store,
        artifact_dir: str | Path,
        policy: RetrainPolicy,
        *,
        clock: Clock = time.time,
        holder: str | None = None,
        dataset_group: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.artifact_dir = Path(artifact_dir)
        self.policy = policy
        self.clock = clock
        self.holder = holder or process_holder()
        self.dataset_group = dataset_group
        self.lease_seconds = lease_seconds
        #: (group, solution, mode) → when a failed training may be tried again.
        self._retry_at: dict[tuple[str, str, str], float] = {}

    # ----------------------------------------------------------------- what is due
    def due_mode(self, deployment: Deployment, now: float | None = None) -> str | None:
        """FULL when it is due, else UPDATE when that is; a kind that just failed waits its retry."""
        now = self.clock() if now is None else now
        for mode, at in deployment.next_due(self.policy).items():  # FULL first
            if at is not None and now >= at and now >= self._retry_at.get((*deployment.key, mode), 0.0):
                return mode
        return None

    def due(self) -> list[tuple[Deployment, str]]:
        now = self.clock()
        found = [(d, self.due_mode(d, now)) for d in deployments(self.store, self.dataset_group)]
        return [(d, mode) for d, mode in found if mode is not None]

    # ----------------------------------------------------------------- running
    def run_due(self, stop: threading.Event | None = None) -> list[Outcome]:
        """One pass: every due training, one after another, each under its solution's lease."""
        outcomes = []
        for deployment, _mode in self.due():
            if stop is not None and stop.is_set():
                break
            outcome = self._run_one(deployment)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _run_one(self, deployment: Deployment) -> Outcome | None:
        group, solution = deployment.key
        lease = Lease(
            self.store, f"retrain:{group}/{solution}", holder=self.holder, ttl=self.lease_seconds, clock=self.clock
        )
        if not lease.acquire():
            log.info("retrain %s/%s: another process is training it; skipped", group, solution)
            return None
        try:
            # Read again under the lease: whoever held it a moment ago may have just done the work.
            fresh = next((d for d in deployments(self.store, group) if d.solution == solution), None)
            mode = self.due_mode(fresh) if fresh is not None else None
            if mode is None:
                return None
            with lease.kept():
                return self._train(fresh, mode)
        finally:
            lease.release()

    def _prune(self, group: str, solution: str) -> None:
        """Old model files go once the new version serves; a failure here is logged, not the training's."""
        from engine.jobs.retention import prune_versions

        try:
            prune_versions(self.store, group, solution, keep=self.policy.keep_versions)
        except Exception:
            log.exception("retention %s/%s: could not archive old versions", group, solution)

    def _train(self, deployment: Deployment, mode: str) -> Outcome:
        from engine.jobs.train import train

        group, solution = deployment.key
        outcome = Outcome(group, solution, deployment.recipe, mode)
        started = time.perf_counter()
        log.info("retrain %s/%s (%s): %s training started", group, solution, deployment.recipe, mode.upper())
        try:
            version = train(
                self.store,
                self.artifact_dir,
                dataset_group=group,
                recipe=deployment.recipe,
                solution=solution,
                mode=mode,
            )
            outcome.version_id = version.id
            for name in campaigns_of(self.store, group, solution):
                self.store.create_campaign(name, version.id, None, replace=True)  # None keeps its config
                outcome.campaigns.append(name)
            self._prune(group, solution)
        except Exception as exc:  # one failure must not stop the server or the other solutions
            outcome.error = exc.message if isinstance(exc, ShelfwiseError) else f"{type(exc).__name__}: {exc}"
            interval = self.policy.full_every if mode == FULL else self.policy.update_every
            self._retry_at[(group, solution, mode)] = self.clock() + min(RETRY_SECONDS, interval)
            log.error(
                "retrain %s/%s (%s): %s training failed: %s",
                group,
                solution,
                deployment.recipe,
                mode.upper(),
                outcome.error,
                exc_info=not isinstance(exc, ShelfwiseError),
            )
        else:
            self._retry_at.pop((group, solution, mode), None)
            served = ", ".join(outcome.campaigns + [f"recommender {r}" for r in deployment.recommenders]) or "nothing"
            log.info(
                "retrain %s/%s (%s): %s version %s in %.1fs; now serving it: %s",
                group,
                solution,
                deployment.recipe,
                mode.upper(),
                outcome.version_id,
                time.perf_counter() - started,
                served,
            )
        outcome.seconds = time.perf_counter() - started
        return outcome

    def run_forever(self, stop: threading.Event, *, alive: Callable[[], bool] = lambda: True) -> None:
        """The ``shelfwise serve`` loop: act only while holding the scheduler lease, so one
        process among all servers on the database runs the schedule; the others stand by and
        take over within a lease's lifetime if it dies."""
        lease = Lease(
            self.store,
            SCHEDULER_LEASE,
            holder=self.holder,
            ttl=max(self.lease_seconds, 3 * self.policy.poll_seconds),
            clock=self.clock,
        )
        leading = False
        while not stop.is_set() and alive():
            try:
                if lease.acquire():
                    if not leading:
                        log.info("retraining schedule runs in this process (%s)", self.policy.describe())
                        leading = True
                    with lease.kept():
                        self.run_due(stop)
                elif leading:
                    log.info("another process now runs the retraining schedule")
                    leading = False
            except Exception:  # the database went away for a moment: look again next time
                log.exception("retraining scheduler pass failed")
            stop.wait(self.policy.poll_seconds)
        if leading:
            try:
                lease.release()
            except Exception:
                log.exception("could not release the scheduler lease")


# --------------------------------------------------------------------- the serve-side process
def start_scheduler_process(settings: Settings, policy: RetrainPolicy) -> multiprocessing.process.BaseProcess:
    """Run the schedule beside the gunicorn workers, in a process of its own: training then never
    competes with requests for a worker's interpreter, and no database connection or thread
    crosses gunicorn's forks. ``spawn`` starts it clean; it ends with the server."""
    process = multiprocessing.get_context("spawn").Process(
        target=_scheduler_main,
        args=(settings, policy, os.getpid(), logging.getLogger().getEffectiveLevel()),
        name="shelfwise-retrain",
        daemon=True,
    )
    process.start()
    return process


def stop_scheduler_process(process: multiprocessing.process.BaseProcess, timeout: float = 10.0) -> None:
    """Ask the scheduler process to stop; kill it if a training keeps it past ``timeout`` (its
    solution's lease then lapses and the next pass trains it again)."""
    from multiprocessing.connection import wait

    # The sentinel, not is_alive(): gunicorn's arbiter reaps every child of the master, ours too.
    if wait([process.sentinel], 0):
        return
    process.terminate()
    if not wait([process.sentinel], timeout):
        process.kill()
        wait([process.sentinel], 5)


def _scheduler_main(settings: Settings, policy: RetrainPolicy, parent_pid: int, level: int) -> None:
    import signal

    from threadpoolctl import threadpool_limits

    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Each run is logged even when the server itself only logs warnings.
    log.setLevel(min(level, logging.INFO))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threadpool_limits(1, "blas")  # implicit's own threads do the work (DESIGN.md, pitfalls)

    def alive() -> bool:  # if the server is killed outright, this process notices and ends
        return os.getppid() == parent_pid

    store = None
    while store is None and not stop.is_set() and alive():
        try:
            store = Store(settings.database_url)
        except ShelfwiseError as exc:  # a bad URL: no retry will mend it
            log.error("retraining scheduler stops: %s", exc.message)
            return
        except Exception:  # the database is not up yet: the server's workers wait for it too
            log.exception("retraining scheduler cannot open the database; trying again")
            stop.wait(policy.poll_seconds)
    if store is None:
        return
    try:
        Scheduler(store, settings.resolved_artifact_dir(), policy).run_forever(stop, alive=alive)
    finally:
        store.close()
