"""``shelfwise evaluate``: a recipe's offline metrics on a dataset group, Personalize's protocol."""

from __future__ import annotations

import argparse
import json

from engine.commands import Cli, emit, open_store
from engine.config import Settings
from engine.errors import InvalidInput


def evaluate_command(args: argparse.Namespace, settings: Settings) -> None:
    from engine.evaluation import evaluate_recipe
    from engine.jobs.train import load_training_data
    from engine.recipes import recipe_class

    store = open_store(settings)
    hyperparameters = json.loads(args.hyperparameters) if args.hyperparameters else None
    if hyperparameters is not None and not isinstance(hyperparameters, dict):
        raise InvalidInput("--hyperparameters must be a JSON object")
    group, recipe, version = args.dataset_group, args.recipe, None
    if args.solution_version:
        version = store.get_solution_version(args.solution_version)
        if group and group != version.dataset_group:
            raise InvalidInput(f"solution version {version.id!r} belongs to {version.dataset_group!r}, not {group!r}")
        if recipe and recipe_class(recipe).name != version.recipe:
            raise InvalidInput(f"solution version {version.id!r} is a {version.recipe!r} model, not {recipe!r}")
        group, recipe = version.dataset_group, version.recipe
        if hyperparameters is None:
            hyperparameters = _version_hyperparameters(store, version)
    if not group or not recipe:
        raise InvalidInput("give --dataset-group and --recipe, or --solution-version")
    cls = recipe_class(recipe)
    data = load_training_data(store, group)
    result = evaluate_recipe(data, cls, hyperparameters, folds=args.folds, seed=args.seed)
    payload = {
        "datasetGroup": group,
        "recipe": cls.name,
        **(
            {"solutionVersionId": version.id, "storedMetrics": version.metrics, "hyperparameters": hyperparameters}
            if version
            else {}
        ),
        **result.as_json(),
    }
    lines = [f"{cls.name} on {group}: {result.requests} requests over {result.folds} fold(s), {result.seconds:.1f}s"]
    lines += [f"  {name:<45} {value:.4f}" for name, value in result.metrics.items()]
    emit(args, payload, "\n".join(lines))


def _version_hyperparameters(store, version) -> dict:
    """What the version was really trained with (``--hpo`` may have chosen it): its artifact's
    header; the solution's own settings when the artifact is not on this machine."""
    from engine.recipes import Recipe

    try:
        return Recipe.saved_hyperparameters(version.artifact_path)
    except (OSError, KeyError, TypeError, ValueError):
        return store.get_solution(version.dataset_group, version.solution).config.get("hyperparameters", {})


def register(cli: Cli) -> None:
    p = cli.command(
        "evaluate",
        evaluate_command,
        "offline metrics of a recipe (90%% of users train; the rest are scored on their newest 10%%)",
    )
    p.add_argument("--dataset-group", help="the data to evaluate on (default: the solution version's)")
    p.add_argument("--recipe", help="recipe name or arn:aws:personalize:::recipe/aws-NAME")
    p.add_argument("--solution-version", metavar="ID", help="evaluate this version's recipe and hyperparameters")
    p.add_argument("--hyperparameters", metavar="JSON", help="recipe hyperparameters as a JSON object")
    p.add_argument("--folds", type=int, default=1, help="folds of 10%% of users each, averaged (1-10, default 1)")
    p.add_argument("--seed", type=int, default=0, help="which users are held out")
