"""Scheduled retraining from the command line: ``shelfwise retrain --due`` for cron, and the
schedule flags that ``shelfwise serve`` shares."""

from __future__ import annotations

import argparse
import datetime as dt

from engine.commands import Cli, emit, open_store
from engine.config import Settings


def duration(text: str) -> float:
    """argparse type: 30m, 2h, 7d... in seconds; a bad one is a usage error naming the flag."""
    from engine.errors import InvalidInput
    from engine.jobs.schedule import parse_duration

    try:
        return parse_duration(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def add_schedule_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--update-every",
        type=duration,
        metavar="DURATION",
        help="UPDATE training of every deployed solution this often: 30m, 2h, 7d; 0 = never "
        "(default: $SHELFWISE_RETRAIN_UPDATE_EVERY, else 2h)",
    )
    p.add_argument(
        "--full-every",
        type=duration,
        metavar="DURATION",
        help="FULL training of every deployed solution this often; 0 = never "
        "(default: $SHELFWISE_RETRAIN_FULL_EVERY, else 7d)",
    )


def policy_from(args: argparse.Namespace, settings: Settings):
    from engine.jobs.schedule import RetrainPolicy

    if getattr(args, "no_retrain", False):
        return RetrainPolicy(update_every=0.0, full_every=0.0)
    return RetrainPolicy.from_settings(settings, update_every=args.update_every, full_every=args.full_every)


def _when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def retrain(args: argparse.Namespace, settings: Settings) -> int:
    from engine.jobs.schedule import Scheduler, deployments

    policy = policy_from(args, settings)
    store = open_store(settings)
    scheduler = Scheduler(store, settings.resolved_artifact_dir(), policy, dataset_group=args.dataset_group)
    if args.list:
        rows = []
        for d in deployments(store, args.dataset_group):
            due = d.next_due(policy)
            rows.append(
                {
                    "datasetGroup": d.dataset_group,
                    "solution": d.solution,
                    "recipe": d.recipe,
                    "campaigns": list(d.campaigns),
                    "recommenders": list(d.recommenders),
                    "lastVersion": _when(d.last_version),
                    "lastFull": _when(d.last_full),
                    "nextUpdate": _when(due["update"]),
                    "nextFull": _when(due["full"]),
                    "dueNow": (scheduler.due_mode(d) or "").upper() or None,
                }
            )
        lines = [
            f"{r['datasetGroup']}/{r['solution']} ({r['recipe']}): next UPDATE {r['nextUpdate'] or 'never'}, "
            f"next FULL {r['nextFull'] or 'never'}" + (f" — {r['dueNow']} due now" if r["dueNow"] else "")
            for r in rows
        ]
        emit(args, {"policy": policy.describe(), "solutions": rows}, "\n".join(lines) or "nothing is deployed")
        return 0
    outcomes = scheduler.run_due()
    failed = [o for o in outcomes if o.error]
    lines = [
        f"{o.dataset_group}/{o.solution}: {o.mode.upper()} "
        + (f"failed: {o.error}" if o.error else f"{o.version_id} ({o.seconds:.1f}s), serving: {', '.join(o.campaigns)}")
        for o in outcomes
    ]
    emit(args, {"runs": [o.as_json() for o in outcomes]}, "\n".join(lines) or "nothing was due")
    return 1 if failed else 0


def register(cli: Cli) -> None:
    p = cli.command("retrain", retrain, "run the retraining that is due, once (for cron)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--due", action="store_true", help="train every deployed solution whose UPDATE or FULL is due")
    which.add_argument("--list", action="store_true", help="show when each deployed solution is due; train nothing")
    p.add_argument("--dataset-group", help="only this dataset group")
    add_schedule_flags(p)
