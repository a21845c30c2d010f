"""``shelfwise demo``: a sample store imported, trained, deployed and served, in one command.

It goes through the same doors a merchant does (Personalize CSV import, training, campaigns,
keys, the widget), so the demo proves the product rather than a shortcut around it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.demo.sample_store import export_personalize_csv, generate_sample_store
from engine.errors import NotFound
from engine.importing import import_file
from engine.jobs.train import train
from engine.storage import Store

DEMO_DATABASE_URL = "sqlite:///shelfwise-demo.db"
DATASET_GROUP = "demo-store"

#: campaign name → (recipe, solution hyperparameters, campaign config)
DEMO_CAMPAIGNS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "recommended-for-you": ("user-personalization", {}, {}),
    # Co-occurrence of carts and purchases: what ends up in the same baskets.
    "customers-also-bought": ("sims", {"event_types": ["add-to-cart", "purchase"]}, {}),
    "best-sellers": ("popularity-count", {"event_types": ["purchase"]}, {"excludeInteracted": False}),
}


def _step(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        print(message, flush=True)


def set_up_demo(
    store: Store, artifact_dir: Path, *, base_url: str, export_dir: str | None = None, log=print
) -> dict[str, Any]:
    """Build the demo dataset group from scratch; returns the demo storefront's configuration."""
    try:
        store.delete_dataset_group(DATASET_GROUP)
        log(f"reset the existing {DATASET_GROUP!r} dataset group")
    except NotFound:
        pass
    store.create_dataset_group(DATASET_GROUP, "ECOMMERCE")

    sample = generate_sample_store()
    with tempfile.TemporaryDirectory(prefix="shelfwise-demo-") as tmp:
        files = export_personalize_csv(sample, export_dir or tmp)
        for kind in ("items", "users", "interactions"):
            report = import_file(store, DATASET_GROUP, kind, files[kind], schema_path=files[f"{kind}-schema"])
            if not report.ok:  # the generator and the importer disagree: a bug, say so loudly
                raise RuntimeError(f"demo {kind} import failed: {report.errors[:3]}")
            log(f"imported {report.imported[kind]:>6} {kind}")

    for campaign, (recipe, hyperparameters, config) in DEMO_CAMPAIGNS.items():
        started = time.perf_counter()
        version = train(
            store,
            artifact_dir,
            dataset_group=DATASET_GROUP,
            recipe=recipe,
            solution=campaign,
            hyperparameters=hyperparameters,
        )
        store.create_campaign(campaign, version.id, config)
        log(f"trained {recipe:<22} → campaign {campaign} ({time.perf_counter() - started:.1f}s)")

    public_key, _ = store.create_api_key(DATASET_GROUP, "public", [base_url])
    secret_key, _ = store.create_api_key(DATASET_GROUP, "secret")
    tracking_id = store.create_event_tracker(DATASET_GROUP, "demo-site")
    # The demo shopper is a real sample shopper with some history, so "recommended for you"
    # is visibly personal from the first page.
    shopper = max(sample.users[:50], key=lambda u: sum(1 for e in sample.interactions if e.user_id == u.user_id))
    return {
        "dataset_group": DATASET_GROUP,
        "public_key": public_key,
        "secret_key": secret_key,
        "tracking_id": tracking_id,
        "shopper_id": shopper.user_id,
        "currency": "USD",
        "campaigns": {
            "recommended_for_you": "recommended-for-you",
            "also_bought": "customers-also-bought",
            "best_sellers": "best-sellers",
        },
    }


def run_demo(args: argparse.Namespace, settings: Settings) -> None:
    if args.db is None and "SHELFWISE_DATABASE_URL" not in __import__("os").environ:
        settings = replace(settings, database_url=DEMO_DATABASE_URL)
    base_url = f"http://{args.host}:{args.port}"
    started = time.perf_counter()
    store = Store(settings.database_url)
    config = set_up_demo(
        store,
        settings.resolved_artifact_dir(),
        base_url=base_url,
        export_dir=args.export,
        log=lambda m: _step(args, m),
    )
    store.close()
    elapsed = time.perf_counter() - started
    curl = (
        f"curl -s {base_url}/v1/recommendations -H 'Authorization: Bearer {config['secret_key']}' "
        f"-H 'Content-Type: application/json' "
        f'-d \'{{"campaign": "recommended-for-you", "userId": "{config["shopper_id"]}", "numResults": 5}}\''
    )
    summary = {
        "database": settings.database_url,
        "setupSeconds": round(elapsed, 2),
        "storefront": f"{base_url}/demo/",
        "product": f"{base_url}/demo/products/p0001",
        "cart": f"{base_url}/demo/cart",
        "dashboard": f"{base_url}/dashboard",
        "api": f"{base_url}/v1/recommendations",
        "curl": curl,
        **{k: v for k, v in config.items() if k != "campaigns"},
        "campaigns": list(DEMO_CAMPAIGNS),
        "exported": args.export,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"\nShelfwise demo ready in {elapsed:.1f}s (database: {settings.database_url})")
        if args.export:
            print(f"sample store written as Personalize CSV files to {args.export}")
        print(f"  storefront:  {base_url}/demo/   (shopping as {config['shopper_id']})")
        print(f"  cart:        {base_url}/demo/cart")
        print(f"  dashboard:   {base_url}/dashboard   (sign in with the secret key)")
        print(f"  widget:      {base_url}/widget.js")
        print(f"  public key:  {config['public_key']}")
        print(f"  secret key:  {config['secret_key']}")
        print(f"  trackingId:  {config['tracking_id']}")
        print(f"  try:         {curl}")
    if args.no_serve:
        return
    from engine.server import run_server

    if not args.json:
        print(f"\nserving on {base_url} (Ctrl-C to stop)", flush=True)
    run_server(replace(settings, extra={**settings.extra, "demo": config}), host=args.host, port=args.port)
