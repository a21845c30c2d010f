"""``shelfwise widget snippet``: the theme snippet for a platform, plugged in through the
``shelfwise.commands`` entry point (the engine never imports adapters).

The public key is stored hashed, so it cannot be read back: pass the one you have with
``--public-key``, or give the store's ``--origin`` and a new public key bound to it is created.
The tracking id is the dataset group's ``--tracker`` event tracker, created when missing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from adapters.base import WidgetContext
from adapters.snippets import LAYOUTS, PLATFORM_FILES, SnippetError, render_files
from engine.commands import Cli, emit, open_store
from engine.config import Settings
from engine.errors import InvalidInput


def widget_snippet(args: argparse.Namespace, settings: Settings) -> None:
    from adapters import ADAPTERS

    if not args.base_url:
        raise InvalidInput("give --base-url https://your-shelfwise.example (or set SHELFWISE_PUBLIC_URL)")
    store = open_store(settings)
    store.get_dataset_group(args.dataset_group)  # NotFound: a clear error before anything is created
    created_key = False
    if args.public_key:
        key = store.authenticate_key(args.public_key)
        if key.kind != "public" or key.dataset_group != args.dataset_group:
            raise InvalidInput(f"--public-key must be a public key of the dataset group {args.dataset_group!r}")
        public_key = args.public_key
    elif args.origin:
        public_key, _ = store.create_api_key(args.dataset_group, "public", [o.rstrip("/") for o in args.origin])
        created_key = True
    else:
        raise InvalidInput("give --public-key, or --origin https://your-store.example to create one")
    tracking_id = args.tracking_id or store.event_trackers(args.dataset_group).get(args.tracker)
    if tracking_id is None:
        tracking_id = store.create_event_tracker(args.dataset_group, args.tracker)
    ctx = WidgetContext(
        base_url=args.base_url,
        public_key=public_key,
        tracking_id=tracking_id,
        recommender=args.recommender,
        extra={
            "layout": args.layout,
            "title": args.title,
            "num_results": args.num_results,
            "widget_name": args.widget_name,
            "type": "recommender" if args.domain_recommender else "campaign",
        },
    )
    try:
        adapter = ADAPTERS[args.platform]()
        text = adapter.render_widget(ctx)
        rendered = render_files(args.platform, ctx)
    except SnippetError as exc:
        raise InvalidInput(str(exc)) from None
    written = []
    if args.out:
        for path, content in rendered.items():
            target = Path(args.out) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            written.append(str(target))
    payload = {"platform": args.platform, "files": rendered, "written": written, "createdPublicKey": created_key}
    emit(args, payload, "\n".join(f"wrote {w}" for w in written) if written else text)


def register(cli: Cli) -> None:
    c = cli.action(
        "widget",
        "snippet",
        widget_snippet,
        "print (or write) the widget snippet for a store platform",
        "widget: storefront snippets",
    )
    c.add_argument("--platform", required=True, choices=sorted(PLATFORM_FILES))
    c.add_argument("--recommender", required=True, help="the campaign (or, with --domain-recommender, recommender)")
    c.add_argument("--dataset-group", required=True)
    c.add_argument(
        "--base-url",
        default=os.environ.get("SHELFWISE_PUBLIC_URL"),
        help="where Shelfwise is served, e.g. https://recs.example.com (default: $SHELFWISE_PUBLIC_URL)",
    )
    c.add_argument("--public-key", help="an existing public key of the dataset group")
    c.add_argument("--origin", action="append", help="create a public key bound to this store origin (repeatable)")
    c.add_argument("--tracking-id", help="event tracker id (default: the --tracker one, created when missing)")
    c.add_argument("--tracker", default="storefront", help="event tracker name (default: storefront)")
    c.add_argument("--domain-recommender", action="store_true", help="--recommender names a domain recommender")
    c.add_argument("--layout", choices=LAYOUTS, default="carousel")
    c.add_argument("--title", default="Recommended for you")
    c.add_argument("--num-results", type=int, default=8)
    c.add_argument("--widget-name", help="the name reports group by (default: the recommender)")
    c.add_argument("--out", metavar="DIR", help="write the files under DIR instead of printing them")
