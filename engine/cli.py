"""The ``shelfwise`` command line. Its contract (commands, flags, --json output) is relied on by
scripts: extend it, never change what exists.

Every command takes ``--db URL`` and ``--json``; errors print one line to stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from engine.config import Settings, load_settings
from engine.errors import InvalidInput, ShelfwiseError
from engine.storage import Store

log = logging.getLogger("shelfwise")

Handler = Callable[[argparse.Namespace, Settings], Any]
_HANDLERS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def arn(settings: Settings, resource: str) -> str:
    region = settings.extra.get("aws_region", "us-east-1")
    account = settings.extra.get("aws_account", "000000000000")
    return f"arn:aws:personalize:{region}:{account}:{resource}"


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as JSON with --json, else the human sentence."""
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url)


# ----------------------------------------------------------------------------- commands
@command("dataset-group create")
def dataset_group_create(args: argparse.Namespace, settings: Settings) -> None:
    group = open_store(settings).create_dataset_group(args.name, args.domain)
    emit(
        args,
        {"name": group.name, "domain": group.domain, "arn": arn(settings, f"dataset-group/{group.name}")},
        f"created dataset group {group.name}",
    )


@command("import")
def import_data(args: argparse.Namespace, settings: Settings) -> int:
    from engine.importing import format_error, import_file

    report = import_file(open_store(settings), args.dataset_group, args.kind, args.file, schema_path=args.schema)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if report.ok:
            print(f"imported {report.imported} {args.kind} from {args.file} ({report.rows} rows)")
        else:
            for error in report.errors:
                print(format_error(error), file=sys.stderr)
    if not report.ok:
        print(
            f"shelfwise: error: {report.error_count} bad rows in {args.file}; nothing was imported",
            file=sys.stderr,
        )
        return 1
    return 0


@command("train")
def train_command(args: argparse.Namespace, settings: Settings) -> None:
    from engine.jobs.train import train

    hyperparameters = json.loads(args.hyperparameters) if args.hyperparameters else None
    version = train(
        open_store(settings),
        settings.resolved_artifact_dir(),
        dataset_group=args.dataset_group,
        recipe=args.recipe,
        solution=args.solution,
        mode=args.mode,
        hyperparameters=hyperparameters,
    )
    payload = {
        "solutionVersionId": version.id,
        "solution": version.solution,
        "recipe": version.recipe,
        "trainingMode": version.training_mode,
        "numInteractions": version.num_interactions,
        "trainingSeconds": round(version.training_seconds or 0.0, 3),
        "artifact": version.artifact_path,
    }
    # The plain output is the id alone, so scripts can capture it with $(...).
    emit(args, payload, version.id)


@command("campaign create")
def campaign_create(args: argparse.Namespace, settings: Settings) -> None:
    config = json.loads(args.config) if args.config else None
    campaign = open_store(settings).create_campaign(args.name, args.solution_version, config, replace=args.update)
    emit(
        args,
        {
            "name": campaign.name,
            "datasetGroup": campaign.dataset_group,
            "solutionVersionId": campaign.solution_version_id,
            "recipe": campaign.recipe,
            "arn": arn(settings, f"campaign/{campaign.name}"),
        },
        f"campaign {campaign.name} serves {campaign.solution_version_id} ({campaign.recipe})",
    )


@command("keys create")
def keys_create(args: argparse.Namespace, settings: Settings) -> None:
    store = open_store(settings)
    kinds = ("public", "secret") if args.kind == "both" else (args.kind,)
    created = {}
    for kind in kinds:
        key, info = store.create_api_key(args.dataset_group, kind, args.origin or ())
        created[f"{kind}Key"] = key
        if kind == "public":
            created["allowedOrigins"] = list(info.allowed_origins)
    lines = [f"{k}: {v}" for k, v in created.items() if k.endswith("Key")]
    emit(
        args,
        {"datasetGroup": args.dataset_group, **created},
        "\n".join(lines) + "\n(keys are shown once; store them now)",
    )


@command("event-tracker create")
def event_tracker_create(args: argparse.Namespace, settings: Settings) -> None:
    tracking_id = open_store(settings).create_event_tracker(args.dataset_group, args.name)
    emit(
        args,
        {"name": args.name, "trackingId": tracking_id, "arn": arn(settings, f"event-tracker/{args.name}")},
        tracking_id,
    )


@command("connect")
def connect(args: argparse.Namespace, settings: Settings) -> None:
    from importlib.metadata import entry_points

    platforms = sorted(ep.name for ep in entry_points(group="shelfwise.adapters"))
    if args.platform not in platforms:
        raise InvalidInput(f"unknown platform {args.platform!r}; known: {', '.join(platforms)}")
    config = {"shop_domain": args.shop} if args.shop else {}
    open_store(settings).connect(args.dataset_group, args.platform, args.secret, config)
    path = f"/webhooks/{args.platform}/{args.dataset_group}"
    emit(
        args,
        {"platform": args.platform, "datasetGroup": args.dataset_group, "webhookPath": path},
        f"connected {args.platform} to {args.dataset_group}: point its webhooks at <server>{path}",
    )


@command("serve")
def serve(args: argparse.Namespace, settings: Settings) -> None:
    from engine.server import run_server

    run_server(settings, host=args.host, port=args.port, workers=args.workers)


@command("demo")
def demo(args: argparse.Namespace, settings: Settings) -> None:
    from engine.demo.setup import run_demo

    run_demo(args, settings)


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", metavar="URL", help="database URL (default: $SHELFWISE_DATABASE_URL, else sqlite:///shelfwise.db)"
    )
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")

    parser = argparse.ArgumentParser(prog="shelfwise", description="Self-hosted product recommendations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common], help="sample store, trained recipes, demo storefront")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-serve", action="store_true", help="set everything up, then exit")
    p.add_argument("--export", metavar="DIR", help="also write the sample store as Personalize CSV files")
    p.set_defaults(handler="demo")

    p = sub.add_parser("serve", parents=[common], help="run the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    p.set_defaults(handler="serve")

    p = sub.add_parser("dataset-group", help="manage dataset groups (one per store)")
    dg = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = dg.add_parser("create", parents=[common], help="create a dataset group")
    c.add_argument("name")
    c.add_argument("--domain", choices=["ECOMMERCE", "VIDEO_ON_DEMAND"])
    c.set_defaults(handler="dataset-group create")

    p = sub.add_parser("import", parents=[common], help="import a Personalize-format CSV file")
    p.add_argument("kind", choices=["interactions", "items", "users"])
    p.add_argument("file")
    p.add_argument("--dataset-group", required=True)
    p.add_argument("--schema", metavar="SCHEMA.json", help="Personalize Avro schema of the file")
    p.set_defaults(handler="import")

    p = sub.add_parser("train", parents=[common], help="train a solution version")
    p.add_argument("--dataset-group", required=True)
    p.add_argument("--recipe", required=True, help="recipe name or arn:aws:personalize:::recipe/aws-NAME")
    p.add_argument("--solution", required=True)
    p.add_argument("--mode", choices=["full", "update"], default="full")
    p.add_argument("--hyperparameters", metavar="JSON", help="recipe hyperparameters as a JSON object")
    p.set_defaults(handler="train")

    p = sub.add_parser("campaign", help="deploy solution versions")
    cp = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = cp.add_parser("create", parents=[common], help="deploy a solution version as a campaign")
    c.add_argument("name")
    c.add_argument("--solution-version", required=True, metavar="ID")
    c.add_argument("--config", metavar="JSON", help='campaign configuration, e.g. {"excludeInteracted": false}')
    c.add_argument("--update", action="store_true", help="point an existing campaign at this version")
    c.set_defaults(handler="campaign create")

    p = sub.add_parser("keys", help="API keys")
    kp = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = kp.add_parser("create", parents=[common], help="create API keys (shown once)")
    c.add_argument("--dataset-group", required=True)
    c.add_argument("--kind", choices=["public", "secret", "both"], default="both")
    c.add_argument("--origin", action="append", help="a storefront origin the public key may be used from")
    c.set_defaults(handler="keys create")

    p = sub.add_parser("event-tracker", help="event trackers (trackingId for PutEvents)")
    ep = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = ep.add_parser("create", parents=[common], help="create an event tracker; prints its trackingId")
    c.add_argument("name")
    c.add_argument("--dataset-group", required=True)
    c.set_defaults(handler="event-tracker create")

    p = sub.add_parser("connect", parents=[common], help="connect a store platform's webhooks")
    p.add_argument("platform")
    p.add_argument("--dataset-group", required=True)
    p.add_argument("--secret", required=True, help="the platform's webhook signing secret")
    p.add_argument("--shop", help="the shop's domain, e.g. example.myshopify.com")
    p.set_defaults(handler="connect")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(database_url=getattr(args, "db", None))
        result = _HANDLERS[args.handler](args, settings)
    except ShelfwiseError as exc:
        print(f"shelfwise: error: {exc.message}", file=sys.stderr)
        return 1
    except json.JSONDecodeError as exc:
        print(f"shelfwise: error: not valid JSON: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
