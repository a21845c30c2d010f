"""``shelfwise webhooks list|replay`` and ``shelfwise backfill``, plugged in through the
``shelfwise.commands`` entry point (the engine never imports the intake)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from engine.commands import Cli, emit, open_store
from engine.config import Settings
from engine.errors import InvalidInput
from webhooks import queue
from webhooks.backfill import BackfillReport, run_backfill
from webhooks.processing import process_delivery
from webhooks.settings import IntakeSettings

#: What a replay may pick up: everything that is neither processed nor held by a live worker.
REPLAYABLE = (queue.RECEIVED, queue.VERIFIED, queue.FAILED, queue.REJECTED, queue.DUPLICATE, queue.PING)


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def webhooks_list(args: argparse.Namespace, settings: Settings) -> None:
    store = open_store(settings)
    statuses = [queue.FAILED] if args.failed else ([args.status] if args.status else None)
    rows = queue.summaries(store, dataset_group=args.dataset_group, statuses=statuses, limit=args.limit)
    if args.json:
        print(json.dumps({"deliveries": [r.as_json() for r in rows]}, indent=2))
        return
    if not rows:
        print("no deliveries" + (" failed" if args.failed else ""))
        return
    for r in rows:
        line = (
            f"{r.id:>8}  {_when(r.received_at)}  {r.dataset_group}  {r.platform}  {r.topic or '-'}  "
            f"{r.status}  records={r.records}"
        )
        print(line + (f"  error: {r.error}" if r.error else ""))


def webhooks_replay(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    intake = IntakeSettings.from_settings(settings)
    if args.failed:
        wanted = [r.id for r in queue.summaries(store, dataset_group=args.dataset_group, statuses=[queue.FAILED])]
    else:
        wanted = sorted(set(args.id))
        known = {r.id: r for r in queue.summaries(store, dataset_group=args.dataset_group, ids=wanted)}
        missing = [str(i) for i in wanted if i not in known]
        if missing:
            where = f" in dataset group {args.dataset_group!r}" if args.dataset_group else ""
            raise InvalidInput(f"no webhook deliveries with id {', '.join(missing)}{where}")
    results = []
    claimed = (
        dict(
            queue.claim(
                store, limit=max(1, len(wanted)), lease_seconds=intake.lease_seconds, ids=wanted, statuses=REPLAYABLE
            )
        )
        if wanted
        else {}
    )
    for delivery_id in wanted:
        if delivery_id not in claimed:
            (row,) = queue.summaries(store, ids=[delivery_id])
            results.append(
                {
                    "id": delivery_id,
                    "status": row.status,
                    "replayed": False,
                    "error": f"not replayed: the delivery is {row.status}",
                }
            )
            continue
        outcome = process_delivery(store, delivery_id, intake)
        results.append(
            {
                "id": delivery_id,
                "status": outcome.status,
                "replayed": True,
                "records": outcome.records,
                "error": outcome.error,
            }
        )
    still_failing = [r for r in results if r["replayed"] and r["status"] in (queue.FAILED, queue.REJECTED)]
    if args.json:
        print(json.dumps({"replayed": results}, indent=2))
    else:
        if not results:
            print("nothing to replay")
        for r in results:
            detail = f"{r.get('records', 0)} records" if r["status"] == queue.PROCESSED else (r["error"] or "")
            print(f"delivery {r['id']}: {r['status']}" + (f" ({detail})" if detail else ""))
    if still_failing:
        print(f"shelfwise: error: {len(still_failing)} of {len(results)} deliveries still fail", file=sys.stderr)
        return 1
    return 0


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--since {text!r} is not an ISO-8601 date or time (e.g. 2024-05-01T00:00:00Z)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def backfill(args: argparse.Namespace, settings: Settings) -> None:
    def progress(report: BackfillReport) -> None:
        if not args.json:
            done = ", ".join(f"{n} {kind}" for kind, n in report.counts.items() if n)
            print(f"page {report.pages}: {done or 'nothing new'}", file=sys.stderr)

    report = run_backfill(
        open_store(settings), args.dataset_group, args.platform, since=_since(args.since), progress=progress
    )
    done = ", ".join(f"{n} {kind}" for kind, n in report.counts.items() if n) or "nothing new"
    emit(
        args, report.as_json(), f"back-filled {args.dataset_group} from {args.platform}: {done} ({report.pages} pages)"
    )


def register(cli: Cli) -> None:
    p = cli.action(
        "webhooks", "list", webhooks_list, "list stored webhook deliveries", "webhook deliveries: list and replay"
    )
    p.add_argument("--dataset-group")
    p.add_argument("--failed", action="store_true", help="only deliveries that failed processing")
    p.add_argument("--status", choices=sorted({*queue.PENDING, queue.PROCESSING, *queue.SETTLED}))
    p.add_argument("--limit", type=int, default=100, help="the most recent N (default 100)")

    p = cli.action("webhooks", "replay", webhooks_replay, "process stored deliveries again")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, nargs="+", action="extend", metavar="N", help="delivery ids")
    which.add_argument("--failed", action="store_true", help="every failed delivery")
    p.add_argument("--dataset-group")

    p = cli.command("backfill", backfill, "read a connected store's catalog and orders through its API")
    p.add_argument("platform", help="shopify, woocommerce, magento or bigcommerce (stores with a catalog API)")
    p.add_argument("--dataset-group", required=True)
    p.add_argument("--since", metavar="ISO", help="start a fresh pass from this time (default: resume or catch up)")
