"""``shelfwise report``: what recommendations earned, per campaign, recommender or widget."""

from __future__ import annotations

import argparse
import time

from engine.commands import Cli, emit, open_store
from engine.config import Settings
from engine.errors import InvalidInput
from engine.storage.attribution import GROUP_BY, attribution_report, parse_time

DAY = 86400.0


def report(args: argparse.Namespace, settings: Settings) -> None:
    if args.days is not None and args.since is not None:
        raise InvalidInput("give --since or --days, not both")
    if args.days is not None and args.days <= 0:
        raise InvalidInput("--days must be positive")
    end = parse_time(args.until, time.time())
    start = parse_time(args.since, end - (args.days or 7) * DAY)
    result = attribution_report(
        open_store(settings),
        args.dataset_group,
        start=start,
        end=end,
        group_by=args.group_by,
        window_seconds=args.window_hours * 3600,
    )
    payload = result.as_dict()
    emit(args, payload, _table(payload))


def _table(payload: dict) -> str:
    head = f"{payload['groupBy']:<32} {'impr':>8} {'clicks':>7} {'CTR':>7} {'carts':>6} {'buys':>6} {'revenue':>11}"
    lines = [f"{payload['datasetGroup']}: {payload['from']} → {payload['to']}", head]
    for row in [*payload["groups"], {"name": "TOTAL", **payload["total"]}]:
        ctr = "-" if row["clickThroughRate"] is None else f"{100 * row['clickThroughRate']:.1f}%"
        lines.append(
            f"{row['name'][:32]:<32} {row['impressions']:>8} {row['clicks']:>7} {ctr:>7} "
            f"{row['addToCarts']:>6} {row['purchases']:>6} {row['revenue']:>11.2f}"
        )
    return "\n".join(lines)


def register(cli: Cli) -> None:
    c = cli.command("report", report, "impressions, clicks, CTR, carts, purchases and revenue from recommendations")
    c.add_argument("--dataset-group", required=True)
    c.add_argument("--since", metavar="ISO", help="start of the window (ISO 8601 or epoch seconds)")
    c.add_argument("--until", metavar="ISO", help="end of the window (default: now)")
    c.add_argument("--days", type=float, help="the last N days (default 7)")
    c.add_argument("--group-by", choices=GROUP_BY, default="campaign")
    c.add_argument("--window-hours", type=float, default=24.0, help="last-click attribution window (default 24)")
