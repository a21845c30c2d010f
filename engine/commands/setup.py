"""Setting a store up: dataset groups, CSV import, keys, event trackers, platform connections."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.commands import Cli, arn, emit, open_store
from engine.config import Settings
from engine.errors import InvalidInput


def dataset_group_create(args: argparse.Namespace, settings: Settings) -> None:
    group = open_store(settings).create_dataset_group(args.name, args.domain)
    emit(
        args,
        {"name": group.name, "domain": group.domain, "arn": arn(settings, f"dataset-group/{group.name}")},
        f"created dataset group {group.name}",
    )


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


def keys_create(args: argparse.Namespace, settings: Settings) -> None:
    from engine.crypto import master_cipher
    from engine.storage.access_keys import create_access_key

    store = open_store(settings)
    kinds = {"all": ("public", "secret", "aws"), "both": ("public", "secret")}.get(args.kind, (args.kind,))
    store.get_dataset_group(args.dataset_group)
    created = {}
    for kind in kinds:
        if kind == "aws":
            # For the Personalize-compatible API: boto3 signs with these (SigV4).
            pair = create_access_key(store, args.dataset_group, master_cipher(settings))
            created["accessKeyId"] = pair.access_key_id
            created["secretAccessKey"] = pair.secret_access_key
            continue
        key, info = store.create_api_key(args.dataset_group, kind, args.origin or ())
        created[f"{kind}Key"] = key
        if kind == "public":
            created["allowedOrigins"] = list(info.allowed_origins)
    lines = [f"{k}: {v}" for k, v in created.items() if k != "allowedOrigins"]
    emit(
        args,
        {"datasetGroup": args.dataset_group, **created},
        "\n".join(lines) + "\n(keys are shown once; store them now)",
    )


def event_tracker_create(args: argparse.Namespace, settings: Settings) -> None:
    tracking_id = open_store(settings).create_event_tracker(args.dataset_group, args.name)
    emit(
        args,
        {"name": args.name, "trackingId": tracking_id, "arn": arn(settings, f"event-tracker/{args.name}")},
        tracking_id,
    )


def _settings_from(pairs: list[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` pairs; ``KEY=@FILE`` reads the value from a file (a PEM public key)."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--set {pair!r}: expected KEY=VALUE")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidInput(f"--set {key}: cannot read {value[1:]}: {exc.strerror}") from exc
        found[key.strip()] = value
    return found


def connect(args: argparse.Namespace, settings: Settings) -> None:
    from importlib.metadata import entry_points

    adapters = {ep.name: ep for ep in entry_points(group="shelfwise.adapters")}
    if args.platform not in adapters:
        raise InvalidInput(f"unknown platform {args.platform!r}; known: {', '.join(sorted(adapters))}")
    config = {"shop_domain": args.shop} if args.shop else {}
    config.update(_settings_from(args.set or []))
    # A bad setting (an unreadable public key, say) is refused now, not at the first webhook.
    adapters[args.platform].load().from_connection(config)
    grace = None
    if args.rotate:
        from engine.jobs.schedule import format_duration, parse_duration

        grace = parse_duration(args.grace)
        if grace <= 0:
            raise InvalidInput("--grace must be a positive duration, e.g. 72h")
    open_store(settings).connect(args.dataset_group, args.platform, args.secret, config, keep_previous_for=grace)
    path = f"/webhooks/{args.platform}/{args.dataset_group}"
    text = f"connected {args.platform} to {args.dataset_group}: point its webhooks at <server>{path}"
    out = {"platform": args.platform, "datasetGroup": args.dataset_group, "webhookPath": path}
    if grace is not None:
        out["previousSecretAcceptedForSeconds"] = grace
        text += f"; the previous secret is still accepted for {format_duration(grace)}"
    emit(args, out, text)


def register(cli: Cli) -> None:
    c = cli.action(
        "dataset-group",
        "create",
        dataset_group_create,
        "create a dataset group",
        "manage dataset groups (one per store)",
    )
    c.add_argument("name")
    c.add_argument("--domain", choices=["ECOMMERCE", "VIDEO_ON_DEMAND"])

    p = cli.command("import", import_data, "import a Personalize-format CSV file")
    p.add_argument("kind", choices=["interactions", "items", "users"])
    p.add_argument("file")
    p.add_argument("--dataset-group", required=True)
    p.add_argument("--schema", metavar="SCHEMA.json", help="Personalize Avro schema of the file")

    c = cli.action("keys", "create", keys_create, "create API keys (shown once)", "API keys")
    c.add_argument("--dataset-group", required=True)
    c.add_argument(
        "--kind",
        choices=["public", "secret", "aws", "both", "all"],
        default="all",
        help="public (widgets), secret (the /v1 API), aws (accessKeyId/secretAccessKey for the "
        "Personalize-compatible API), both (public and secret), all (default)",
    )
    c.add_argument("--origin", action="append", help="a storefront origin the public key may be used from")

    c = cli.action(
        "event-tracker",
        "create",
        event_tracker_create,
        "create an event tracker; prints its trackingId",
        "event trackers (trackingId for PutEvents)",
    )
    c.add_argument("name")
    c.add_argument("--dataset-group", required=True)

    p = cli.command("connect", connect, "connect a store platform's webhooks")
    p.add_argument("platform")
    p.add_argument("--dataset-group", required=True)
    p.add_argument("--secret", required=True, help="the platform's webhook signing secret")
    p.add_argument("--shop", help="the shop's domain, e.g. example.myshopify.com")
    p.add_argument(
        "--rotate",
        action="store_true",
        help="a new secret for an existing connection: keep accepting the old one for --grace",
    )
    p.add_argument("--grace", default="72h", help="with --rotate: how long the old secret still counts (default 72h)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a connection setting (API token, store URL, public_key=@FILE, ...); repeatable",
    )
