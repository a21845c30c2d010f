"""Training solution versions and deploying them as campaigns."""

from __future__ import annotations

import argparse
import json

from engine.commands import Cli, arn, emit, open_store
from engine.config import Settings
from engine.errors import InvalidInput


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


def campaign_create(args: argparse.Namespace, settings: Settings) -> None:
    from engine.serving.exploration import ExplorationConfig

    config = json.loads(args.config) if args.config else None
    if config is not None:
        if not isinstance(config, dict):
            raise InvalidInput("--config must be a JSON object")
        ExplorationConfig.from_campaign(config)  # refuse a bad setting now, not at request time
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


def register(cli: Cli) -> None:
    p = cli.command("train", train_command, "train a solution version")
    p.add_argument("--dataset-group", required=True)
    p.add_argument("--recipe", required=True, help="recipe name or arn:aws:personalize:::recipe/aws-NAME")
    p.add_argument("--solution", required=True)
    p.add_argument("--mode", choices=["full", "update"], default="full")
    p.add_argument("--hyperparameters", metavar="JSON", help="recipe hyperparameters as a JSON object")

    c = cli.action(
        "campaign", "create", campaign_create, "deploy a solution version as a campaign", "deploy solution versions"
    )
    c.add_argument("name")
    c.add_argument("--solution-version", required=True, metavar="ID")
    c.add_argument("--config", metavar="JSON", help='campaign configuration, e.g. {"excludeInteracted": false}')
    c.add_argument("--update", action="store_true", help="point an existing campaign at this version")
