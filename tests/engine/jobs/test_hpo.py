"""``shelfwise train --hpo``: trials on validation users, every one stored, the best trained with."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest
import requests

from engine.api import create_app
from engine.cli import main
from engine.errors import InvalidInput, NotFound
from engine.evaluation import RANKING_METRICS, SEGMENT_METRICS
from engine.evaluation.split import user_folds
from engine.jobs.hpo import HpoSettings, search
from engine.jobs.train import load_training_data, train
from engine.recipes import RECIPES, recipe_class
from engine.recipes.sims import Sims
from engine.records import Interaction
from engine.storage import Store
from engine.storage.hpo import get_search
from tests.conftest import LiveServer
from tests.engine.recipes.contract import clustered_data


def fill(store: Store, group: str = "shop") -> None:
    store.create_dataset_group(group)
    data = clustered_data()
    store.ingest(
        group,
        [
            Interaction(str(data.user_ids[u]), str(data.item_ids[i]), str(t), float(ts))
            for u, i, t, ts in zip(data.user_index, data.item_index, data.event_types, data.timestamps, strict=True)
        ],
    )


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/hpo.db"
    store = Store(url)
    fill(store)
    store.close()
    return url


def shelfwise(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_trial_is_stored_and_the_best_one_trains_the_version(store, tmp_path):
    fill(store)
    version = train(
        store,
        tmp_path,
        dataset_group="shop",
        recipe="sims",
        solution="also",
        # 10 neighbours is the bottom of the range: too few to fill 25 slots, so others do better.
        hyperparameters={"neighbours": 10, "history_decay": 0.3},
        hpo=HpoSettings(trials=3, metric="precision_at_25"),
    )
    search = get_search(store, version.id)
    assert search is not None and search.status == "COMPLETED" and search.trials_requested == 3
    assert search.metric == "precision_at_25"
    assert [t.number for t in search.trials] == [0, 1, 2]
    space = recipe_class("sims").hpo_space
    for trial in search.trials:
        assert trial.status == "COMPLETE" and set(trial.metrics) == set(RANKING_METRICS)
        assert trial.value == pytest.approx(trial.metrics[search.metric], abs=1e-6)
        assert set(trial.params) == set(space) and all(space[n].contains(v) for n, v in trial.params.items())
    # The solution's own values go first, so the search never ends below them on validation.
    assert search.trials[0].params == {"neighbours": 10, "history_decay": 0.3, "sequence_window": 5}
    best = max(search.trials, key=lambda t: t.value)
    assert best.number != 0 and best.value > search.trials[0].value
    assert search.best_trial == best.number and search.best_value == pytest.approx(best.value, abs=1e-6)
    # The version was trained with the solution's settings overridden by the best trial's.
    model = recipe_class("sims").load(version.artifact_path)
    assert model.hyperparameters == search.hyperparameters
    assert {n: model.hyperparameters[n] for n in space} == best.params
    assert model.hyperparameters["event_types"] == []  # untouched by the search
    # The choice is the solution's from now on: a later FULL without --hpo keeps it.
    assert store.get_solution("shop", "also").config["hyperparameters"] == search.hyperparameters
    later = train(store, tmp_path, dataset_group="shop", recipe="sims", solution="also", metrics=False)
    assert recipe_class("sims").load(later.artifact_path).hyperparameters == search.hyperparameters
    # Validation users are the protocol's second fold: never the users the stored metrics test.
    folds = user_folds(120, 2, 0)
    assert search.validation["users"] == len(folds[1]) == 12
    assert set(version.metrics) == set(RANKING_METRICS)
    # The search goes with its dataset group.
    store.delete_dataset_group("shop")
    assert get_search(store, version.id) is None


def test_cli_trains_with_hpo_and_lists_the_trials(db, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SHELFWISE_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    code, out, err = shelfwise(
        capsys, "train", "--dataset-group", "shop", "--recipe", "arn:aws:personalize:::recipe/aws-sims",
        "--solution", "s", "--hyperparameters", '{"neighbours": 10}', "--hpo", "--hpo-trials", "2",
        "--hpo-metric", "precision_at_25", "--db", db, "--json",
    )  # fmt: skip
    assert code == 0, err
    assert err == ""  # no progress bar when stderr is not a terminal
    payload = json.loads(out)
    hpo = payload["hpo"]
    assert hpo["metric"] == "precision_at_25" and hpo["trials"] == 2 and hpo["status"] == "COMPLETED"
    assert set(hpo["space"]) == {"neighbours", "history_decay", "sequence_window"}
    version_id = payload["solutionVersionId"]

    code, out, _ = shelfwise(capsys, "hpo", "trials", "--solution-version", version_id, "--db", db, "--json")
    listed = json.loads(out)
    assert code == 0 and listed["solutionVersionId"] == version_id and len(listed["trials"]) == 2
    values = [t["value"] for t in listed["trials"]]
    assert listed["bestValue"] == pytest.approx(max(values), abs=1e-6)
    assert all(t["metrics"]["precision_at_25"] == pytest.approx(t["value"], abs=1e-6) for t in listed["trials"])
    assert listed["bestTrial"] == 1 and listed["trials"][0]["params"]["neighbours"] == 10
    assert listed["hyperparameters"]["neighbours"] == listed["trials"][1]["params"]["neighbours"] != 10

    code, out, _ = shelfwise(capsys, "hpo", "trials", "--solution-version", version_id, "--db", db)
    lines = out.splitlines()
    assert code == 0 and "2 of 2 trials" in lines[0] and "precision_at_25" in lines[0]
    assert "neighbours" in lines[1] and sum(line.lstrip().startswith("*") for line in lines) == 1
    assert lines[-1].startswith(f"chosen (trial {listed['bestTrial']})")

    # Evaluating the version evaluates what it was trained with, not the solution's defaults.
    code, out, _ = shelfwise(capsys, "evaluate", "--solution-version", version_id, "--db", db, "--json")
    assert code == 0 and json.loads(out)["hyperparameters"] == listed["hyperparameters"]

    # The plain output is still the id alone, for $(...).
    code, out, _ = shelfwise(
        capsys, "train", "--dataset-group", "shop", "--recipe", "sims", "--solution", "s", "--hpo", "--hpo-trials",
        "1", "--db", db,
    )  # fmt: skip
    assert code == 0 and out.strip().startswith("sv-") and len(out.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--recipe", "popularity-count", "--hpo"), "recipe 'popularity-count' has no hyperparameters to search"),
        (("--recipe", "trending-now", "--hpo"), "has no hyperparameters to search (--hpo works for: item-affinity"),
        (("--recipe", "sims", "--hpo", "--hpo-trials", "0"), "--hpo-trials must be a whole number from 1 to 500"),
        (("--recipe", "sims", "--hpo", "--hpo-trials", "501"), "--hpo-trials must be a whole number from 1 to 500"),
        (("--recipe", "sims", "--hpo-trials", "3"), "--hpo-trials and --hpo-metric need --hpo"),
        (("--recipe", "sims", "--hpo", "--hpo-metric", "recall_at_1_percent"), "unknown metric 'recall_at_1_percent'"),
        (("--recipe", "item-affinity", "--hpo", "--hpo-metric", "precision_at_10"), "unknown metric"),
        (("--recipe", "sims", "--hpo", "--mode", "update"), "--hpo runs with --mode full"),
    ],
)
def test_a_search_that_cannot_run_is_refused_before_anything_is_created(db, capsys, args, message):
    code, out, err = shelfwise(capsys, "train", "--dataset-group", "shop", "--solution", "x", *args, "--db", db)
    assert code == 1 and out == ""
    assert err.startswith("shelfwise: error: ") and message in err and err.count("\n") == 1
    store = Store(db)
    with pytest.raises(NotFound):
        store.get_solution("shop", "x")
    store.close()


def test_hpo_trials_must_be_a_number(db, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset-group", "shop", "--recipe", "sims", "--solution", "x", "--hpo", "--hpo-trials", "a"])
    assert exc.value.code == 2 and "invalid int value: 'a'" in capsys.readouterr().err


def test_a_version_trained_without_hpo_has_no_trials(db, capsys, tmp_path):
    store = Store(db)
    version = train(store, tmp_path, dataset_group="shop", recipe="sims", solution="plain", metrics=False)
    store.close()
    code, _, err = shelfwise(capsys, "hpo", "trials", "--solution-version", version.id, "--db", db)
    assert code == 1 and "was trained without --hpo" in err
    code, _, err = shelfwise(capsys, "hpo", "trials", "--solution-version", "sv-nope", "--db", db)
    assert code == 1 and "does not exist" in err


def test_segment_recipes_search_on_segment_recall_and_updates_keep_the_chosen_settings(db, tmp_path):
    store = Store(db)
    version = train(
        store,
        tmp_path,
        dataset_group="shop",
        recipe="item-affinity",
        solution="seg",
        hyperparameters={"factors": 16, "iterations": 5},
        metrics=False,
        hpo=HpoSettings(trials=1),
    )
    search = get_search(store, version.id)
    assert search.metric == "recall_at_1_percent" and search.validation["protocol"] == "segment"
    assert all(set(t.metrics) == set(SEGMENT_METRICS) for t in search.trials)

    # user-personalization: the solution's factors (8) lie outside the searched range, so the
    # chosen version has other factors; an UPDATE must start from those, not the solution's.
    fast = {"factors": 8, "iterations": 5}
    full = train(
        store,
        tmp_path,
        dataset_group="shop",
        recipe="user-personalization",
        solution="up",
        hyperparameters=fast,
        metrics=False,
        hpo=HpoSettings(trials=1),
    )
    chosen = get_search(store, full.id).hyperparameters
    assert chosen["factors"] != 8 and chosen["iterations"] == 5
    update = train(store, tmp_path, dataset_group="shop", recipe="user-personalization", solution="up", mode="update")
    assert recipe_class("user-personalization").load(update.artifact_path).hyperparameters == chosen
    assert get_search(store, update.id) is None
    store.close()


class NarrowSims(Sims):
    """sims that refuses more than 50 neighbours, as a recipe refuses a setting its data cannot
    support: what a search must survive."""

    def fit(self, data, *, previous=None):
        if self.hyperparameters["neighbours"] > 50:
            raise InvalidInput("too many neighbours for this catalog")
        return super().fit(data, previous=previous)


def test_a_failing_trial_is_stored_with_its_error_and_the_search_goes_on(db, tmp_path):
    store = Store(db)
    data = load_training_data(store, "shop")
    solution = store.create_solution("shop", "narrow", "sims", {})
    result = search(store, solution, NarrowSims, data, {"neighbours": 20}, "sv-narrow", HpoSettings(trials=6))
    trials = get_search(store, "sv-narrow").trials
    assert len(trials) == 6
    for trial in trials:
        failed = trial.params["neighbours"] > 50
        assert trial.status == ("FAILED" if failed else "COMPLETE")
        assert (trial.error == "InvalidInput: too many neighbours for this catalog") if failed else trial.error is None
        assert (trial.value is None and trial.metrics == {}) if failed else trial.value is not None
    assert any(t.status == "FAILED" for t in trials) and any(t.status == "COMPLETE" for t in trials)
    assert result.hyperparameters["neighbours"] <= 50

    with pytest.raises(InvalidInput, match="every one of the 1 trials failed"):
        search(store, solution, NarrowSims, data, {"neighbours": 400}, "sv-narrower", HpoSettings(trials=1))
    assert get_search(store, "sv-narrower").status == "FAILED"
    store.close()


def test_every_declared_range_lies_inside_its_recipes_schema():
    for cls in RECIPES.values():
        fields = cls.Hyperparameters().fields
        for name, r in cls.hpo_space.items():
            assert name in fields, f"{cls.name}: {name} is not a hyperparameter"
            ends = r.choices if hasattr(r, "choices") else (r.low, r.high)
            for value in ends:
                assert cls.validate_hyperparameters({name: value})[name] == value


def _on_a_terminal(db: str, tmp_path, *args: str) -> tuple[str, str]:
    """Run the real command with stderr on a pseudo-terminal (stdout captured as a script would)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "SHELFWISE_ARTIFACT_DIR": str(tmp_path / "artifacts"), "SHELFWISE_TRAINING_METRICS": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args, "--db", db], stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    out = process.stdout.read().decode()
    assert process.wait(timeout=120) == 0, err.decode(errors="replace")
    return out, err.decode(errors="replace")


def test_progress_bars_on_a_terminal_only_and_never_with_json(db, tmp_path):
    out, err = _on_a_terminal(
        db, tmp_path, "train", "--dataset-group", "shop", "--recipe", "item-affinity", "--solution", "ia", "--hpo",
        "--hpo-trials", "1", "--hyperparameters", '{"factors": 16, "iterations": 6}',
    )  # fmt: skip
    assert out.startswith("sv-") and len(out.splitlines()) == 1  # stdout stays the id alone
    assert "hpo item-affinity" in err and "1/1" in err  # the trials
    assert "6/6" in err  # implicit's ALS sweeps of the final training
    out, err = _on_a_terminal(
        db, tmp_path, "train", "--dataset-group", "shop", "--recipe", "sims", "--solution", "s", "--hpo",
        "--hpo-trials", "1", "--json",
    )  # fmt: skip
    assert json.loads(out)["hpo"]["trials"] == 1 and err.strip() == ""


def test_the_api_shows_a_versions_metrics_and_its_search(db, tmp_path):
    store = Store(db)
    fill(store, "other-shop")
    version = train(store, tmp_path, dataset_group="shop", recipe="sims", solution="s", hpo=HpoSettings(trials=2))
    plain = train(store, tmp_path, dataset_group="shop", recipe="popularity-count", solution="p")
    secret, _ = store.create_api_key("shop", "secret")
    public, _ = store.create_api_key("shop", "public")
    other, _ = store.create_api_key("other-shop", "secret")
    app = create_app(store=store, database_url=db, artifact_dir=str(tmp_path))
    with LiveServer(app) as server:

        def get(version_id: str, key: str) -> requests.Response:
            url = f"{server.url}/v1/solution-versions/{version_id}"
            return requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

        body = get(version.id, secret).json()
        assert body["recipe"] == "sims" and body["metrics"] == version.metrics
        chosen = get_search(store, version.id).hyperparameters
        assert body["hyperparameters"] == body["hpo"]["hyperparameters"] == chosen
        assert body["hpo"]["bestTrial"] in (0, 1) and len(body["hpo"]["trials"]) == 2
        assert body["hpo"]["trials"][0]["metrics"]["normalized_discounted_cumulative_gain_at_10"] >= 0
        assert get(plain.id, secret).json()["hpo"] is None
        assert get(version.id, public).status_code == 403
        missing = get(version.id, other)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFoundException"
        assert get("sv-nope", secret).status_code == 404
    store.close()
