"""Running Shelfwise: the API server and the one-command demo."""

from __future__ import annotations

import argparse

from engine.commands import Cli
from engine.commands.retraining import add_schedule_flags
from engine.config import Settings


def serve(args: argparse.Namespace, settings: Settings) -> None:
    from engine.commands.retraining import policy_from
    from engine.server import run_server

    run_server(settings, host=args.host, port=args.port, workers=args.workers, retrain=policy_from(args, settings))


def demo(args: argparse.Namespace, settings: Settings) -> None:
    from engine.demo.setup import run_demo

    run_demo(args, settings)


def register(cli: Cli) -> None:
    p = cli.command("demo", demo, "sample store, trained recipes, demo storefront")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-serve", action="store_true", help="set everything up, then exit")
    p.add_argument("--export", metavar="DIR", help="also write the sample store as Personalize CSV files")

    p = cli.command("serve", serve, "run the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    add_schedule_flags(p)
    p.add_argument("--no-retrain", action="store_true", help="no scheduled retraining in this server")
