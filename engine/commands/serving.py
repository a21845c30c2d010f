"""What serving offers: filters (created once, named in requests) and domain recommenders."""

from __future__ import annotations

import argparse

from engine.commands import Cli, arn, emit, open_store
from engine.config import Settings


def _payload(settings: Settings, info) -> dict:
    return {
        "name": info.name,
        "datasetGroup": info.dataset_group,
        "expression": info.expression,
        "arn": arn(settings, f"filter/{info.name}"),
        "createdAt": info.created_at,
    }


def filter_create(args: argparse.Namespace, settings: Settings) -> None:
    from engine.serving.filters import create_filter

    info = create_filter(open_store(settings), args.dataset_group, args.name, args.expression)
    payload = _payload(settings, info)
    # The plain output is the ARN alone, so scripts can capture it with $(...).
    emit(args, payload, payload["arn"])


def filter_list(args: argparse.Namespace, settings: Settings) -> None:
    from engine.storage.filters import list_filters

    filters = [_payload(settings, info) for info in list_filters(open_store(settings), args.dataset_group)]
    emit(args, {"filters": filters}, "\n".join(f"{f['name']}\t{f['expression']}" for f in filters))


def filter_delete(args: argparse.Namespace, settings: Settings) -> None:
    from engine.storage.filters import delete_filter

    delete_filter(open_store(settings), args.dataset_group, args.name)
    emit(args, {"name": args.name, "deleted": True}, f"deleted filter {args.name}")


def recommender_create(args: argparse.Namespace, settings: Settings) -> None:
    from engine.serving.recommenders import create_recommender

    info = create_recommender(
        open_store(settings), settings.resolved_artifact_dir(), args.dataset_group, args.name, args.recipe
    )
    payload = {
        "name": info.name,
        "datasetGroup": info.dataset_group,
        "recipe": info.use_case,
        "solutionVersionId": info.solution_version_id,
        "arn": arn(settings, f"recommender/{info.name}"),
    }
    emit(args, payload, payload["arn"])


def recommender_list(args: argparse.Namespace, settings: Settings) -> None:
    from engine.serving.recommenders import list_recommenders

    found = [
        {
            "name": r.name,
            "recipe": r.use_case,
            "solutionVersionId": r.solution_version_id,
            "arn": arn(settings, f"recommender/{r.name}"),
        }
        for r in list_recommenders(open_store(settings), args.dataset_group)
    ]
    emit(args, {"recommenders": found}, "\n".join(f"{r['name']}\t{r['recipe']}" for r in found))


def register(cli: Cli) -> None:
    group_help = "filters: Personalize filter expressions applied to recommendations"
    c = cli.action("filter", "create", filter_create, "create a filter; prints its ARN", group_help)
    c.add_argument("name")
    c.add_argument("--dataset-group", required=True)
    c.add_argument(
        "--expression",
        required=True,
        metavar="EXPR",
        help="e.g. 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"purchase\")'",
    )

    from engine.serving.recommenders import USE_CASES

    c = cli.action(
        "recommender",
        "create",
        recommender_create,
        "train and deploy a domain recommender; prints its ARN",
        "domain recommenders (Personalize's ECOMMERCE and VIDEO_ON_DEMAND use cases)",
    )
    c.add_argument("name")
    c.add_argument("--dataset-group", required=True)
    c.add_argument("--recipe", required=True, metavar="USE_CASE", help=", ".join(sorted(USE_CASES)))
    c = cli.action("recommender", "list", recommender_list, "list a dataset group's recommenders")
    c.add_argument("--dataset-group", required=True)

    c = cli.action("filter", "list", filter_list, "list a dataset group's filters")
    c.add_argument("--dataset-group", required=True)

    c = cli.action("filter", "delete", filter_delete, "delete a filter (filters cannot be changed: delete, create)")
    c.add_argument("name")
    c.add_argument("--dataset-group", required=True)
