"""Training solution versions and deploying them as campaigns."""

from __future__ import annotations

import argparse
import json
import sys

from engine.commands import Cli, arn, emit, open_store
from engine.config import Settings
from engine.errors import InvalidInput, NotFound


def train_command(args: argparse.Namespace, settings: Settings) -> None:
    from engine.jobs.train import train

    hyperparameters = json.loads(args.hyperparameters) if args.hyperparameters else None
    store = open_store(settings)
    version = train(
        store,
        settings.resolved_artifact_dir(),
        dataset_group=args.dataset_group,
        recipe=args.recipe,
        solution=args.solution,
        mode=args.mode,
        hyperparameters=hyperparameters,
        hpo=_hpo_settings(args),
        # Bars only for a person at a terminal: never in --json output or a captured log.
        progress=not args.json and sys.stderr.isatty(),
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
    if args.hpo:
        from engine.storage.hpo import get_search

        search = get_search(store, version.id)
        if search is not None:
            payload["hpo"] = {k: v for k, v in search.as_json().items() if k not in ("solutionVersionId", "trials")}
            payload["hpo"]["trials"] = len(search.trials)
    # The plain output is the id alone, so scripts can capture it with $(...).
    emit(args, payload, version.id)


def _hpo_settings(args: argparse.Namespace):
    from engine.jobs.hpo import DEFAULT_TRIALS, HpoSettings

    if not args.hpo:
        if args.hpo_trials is not None or args.hpo_metric is not None:
            raise InvalidInput("--hpo-trials and --hpo-metric need --hpo")
        return None
    trials = DEFAULT_TRIALS if args.hpo_trials is None else args.hpo_trials
    return HpoSettings(trials=trials, metric=args.hpo_metric)


def hpo_trials(args: argparse.Namespace, settings: Settings) -> None:
    from engine.storage.hpo import get_search

    store = open_store(settings)
    version = store.get_solution_version(args.solution_version)
    search = get_search(store, version.id)
    if search is None:
        raise NotFound(f"solution version {version.id!r} was trained without --hpo: it has no trials")
    lines = [
        f"{version.recipe} {version.id}: {len(search.trials)} of {search.trials_requested} trials, "
        f"{search.status.lower()}, maximising {search.metric} on {_validation_text(search.validation)}",
    ]
    names = list(search.space)
    rows = [
        [
            ("* " if trial.number == search.best_trial else "  ") + str(trial.number),
            "failed" if trial.value is None else f"{trial.value:.4f}",
            *(_cell(trial.params.get(n)) for n in names),
        ]
        for trial in search.trials
    ]
    header = ["  trial", "value", *names]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        lines.append("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    if search.hyperparameters is not None:
        chosen = {n: search.hyperparameters.get(n) for n in names}
        lines.append(f"chosen (trial {search.best_trial}): {json.dumps(chosen)}")
    emit(args, search.as_json(), "\n".join(lines))


def _validation_text(validation: dict) -> str:
    if validation.get("protocol") == "segment":
        return "every user's newest 20%"
    return f"{validation.get('users')} held-out users"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "none" if value is None else str(value)


def campaign_create(args: argparse.Namespace, settings: Settings) -> None:
    from engine.jobs.schedule import SYNC_SETTING
    from engine.recipes.up_candidates import CandidateSettings
    from engine.serving.campaigns import APPROXIMATE_SETTING
    from engine.serving.exploration import ExplorationConfig

    config = json.loads(args.config) if args.config else None
    if config is not None:
        if not isinstance(config, dict):
            raise InvalidInput("--config must be a JSON object")
        ExplorationConfig.from_campaign(config)  # refuse a bad setting now, not at request time
        if not isinstance(config.get(SYNC_SETTING, True), bool):
            raise InvalidInput(f"{SYNC_SETTING} must be true or false")
        CandidateSettings.from_config(config.get(APPROXIMATE_SETTING), 1)  # its shape; sizes come with the model
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
    p.add_argument(
        "--hpo",
        action="store_true",
        help="search the recipe's hyperparameters on held-out users first and train with the best (FULL only)",
    )
    p.add_argument("--hpo-trials", type=int, metavar="N", help="trials to run with --hpo (1-500, default 10)")
    p.add_argument(
        "--hpo-metric",
        metavar="NAME",
        help="metric to maximise, as `shelfwise evaluate` names it "
        "(default normalized_discounted_cumulative_gain_at_10; recall_at_1_percent for segment recipes)",
    )

    h = cli.action(
        "hpo", "trials", hpo_trials, "a solution version's hyperparameter search, every trial", "hyperparameter search"
    )
    h.add_argument("--solution-version", required=True, metavar="ID")

    c = cli.action(
        "campaign", "create", campaign_create, "deploy a solution version as a campaign", "deploy solution versions"
    )
    c.add_argument("name")
    c.add_argument("--solution-version", required=True, metavar="ID")
    c.add_argument("--config", metavar="JSON", help='campaign configuration, e.g. {"excludeInteracted": false}')
    c.add_argument("--update", action="store_true", help="point an existing campaign at this version")
