"""``shelfwise evaluate`` and the metrics every trained FULL solution version stores."""

import json

import pytest

from engine.cli import main
from engine.jobs.train import train
from engine.records import Interaction
from engine.storage import Store
from tests.engine.recipes.contract import clustered_data

FAST = {"factors": 8, "iterations": 5}
METRICS = {
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
}


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/eval.db"
    store = Store(url)
    store.create_dataset_group("shop")
    data = clustered_data()
    store.ingest(
        "shop",
        [
            Interaction(str(data.user_ids[u]), str(data.item_ids[i]), str(t), float(ts))
            for u, i, t, ts in zip(data.user_index, data.item_index, data.event_types, data.timestamps, strict=True)
        ],
    )
    store.close()
    return url


def shelfwise(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_evaluate_prints_personalizes_metrics_as_json(db, capsys):
    code, out, _ = shelfwise(
        capsys,
        "evaluate",
        "--dataset-group",
        "shop",
        "--recipe",
        "popularity-count",
        "--folds",
        "2",
        "--db",
        db,
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert report["recipe"] == "popularity-count" and report["folds"] == 2 and report["requests"] == 24
    assert set(report["metrics"]) == METRICS
    assert 0 < report["metrics"]["precision_at_10"] < 1


def test_evaluate_by_solution_version_uses_its_recipe_and_hyperparameters(db, capsys, tmp_path):
    store = Store(db)
    version = train(
        store,
        tmp_path / "artifacts",
        dataset_group="shop",
        recipe="arn:aws:personalize:::recipe/aws-user-personalization",
        solution="for-you",
        hyperparameters=FAST,
    )
    store.close()
    assert set(version.metrics) == METRICS  # GetSolutionMetrics has something to return
    code, out, _ = shelfwise(capsys, "evaluate", "--solution-version", version.id, "--db", db, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["recipe"] == "user-personalization" and report["datasetGroup"] == "shop"
    assert report["storedMetrics"] == version.metrics
    code, out, _ = shelfwise(capsys, "evaluate", "--solution-version", version.id, "--db", db)
    assert code == 0 and "normalized_discounted_cumulative_gain_at_10" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dataset-group", "shop", "--recipe", "no-such-recipe"), "unknown recipe"),
        (("--dataset-group", "shop", "--recipe", "sims", "--folds", "11"), "folds must be between 1 and 10"),
        (("--dataset-group", "shop"), "give --dataset-group and --recipe"),
        (("--dataset-group", "missing", "--recipe", "sims"), "does not exist"),
        (("--solution-version", "sv-nope"), "does not exist"),
        (("--dataset-group", "shop", "--recipe", "sims", "--hyperparameters", "[1]"), "JSON object"),
        (
            ("--dataset-group", "shop", "--recipe", "sims", "--hyperparameters", '{"bogus": 1}'),
            "invalid hyperparameters",
        ),
    ],
)
def test_bad_requests_get_one_line_errors(db, capsys, args, message):
    code, out, err = shelfwise(capsys, "evaluate", *args, "--db", db)
    assert code == 1 and out == ""
    assert err.startswith("shelfwise: error: ") and message in err and err.count("\n") == 1


def test_metrics_can_be_skipped_and_update_versions_store_none(db, tmp_path):
    store = Store(db)
    full = train(store, tmp_path, dataset_group="shop", recipe="sims", solution="s", metrics=False)
    assert full.metrics == {}
    update = train(
        store, tmp_path, dataset_group="shop", recipe="user-personalization", solution="u", hyperparameters=FAST
    )
    again = train(store, tmp_path, dataset_group="shop", recipe="user-personalization", solution="u", mode="update")
    assert set(update.metrics) == METRICS and again.metrics == {}
    store.close()


def test_the_environment_can_turn_training_metrics_off(db, tmp_path, monkeypatch):
    monkeypatch.setenv("SHELFWISE_TRAINING_METRICS", "0")
    store = Store(db)
    assert train(store, tmp_path, dataset_group="shop", recipe="popularity-count", solution="p").metrics == {}
    store.close()


def test_training_reads_interaction_context_only_where_the_schema_declares_it(tmp_path):
    from engine.jobs.train import load_training_data

    store = Store(f"sqlite:///{tmp_path}/ctx.db")
    for group in ("plain", "with-context"):
        store.create_dataset_group(group)
        store.ingest(group, [Interaction("u1", "i1", "view", 1.0, context={"DEVICE_TYPE": "mobile"})])
    fields = [{"name": n, "type": "string"} for n in ("USER_ID", "ITEM_ID", "EVENT_TYPE", "DEVICE_TYPE")]
    fields.append({"name": "TIMESTAMP", "type": "long"})
    store.put_schema("with-context", "interactions", {"type": "record", "name": "Interactions", "fields": fields})
    assert load_training_data(store, "plain").contexts is None
    assert load_training_data(store, "with-context").contexts.tolist() == [{"DEVICE_TYPE": "mobile"}]
    store.close()
