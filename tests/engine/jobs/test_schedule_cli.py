"""Scheduled retraining as users run it: ``shelfwise serve`` retraining in the background while it
answers (a real server in a subprocess), and ``shelfwise retrain --due`` for cron."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from engine.cli import main
from engine.jobs.train import train
from engine.storage import Store
from tests.engine.jobs.test_schedule import UP, shop

SHELFWISE = [sys.executable, "-m", "engine.cli"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "SHELFWISE_TRAINING_METRICS": "0"}


@pytest.fixture
def deployed(tmp_path):
    """A SQLite store with one user-personalization campaign and a secret key."""
    db = f"sqlite:///{tmp_path}/shop.db"
    store = Store(db)
    group = shop(store)
    version = train(
        store,
        tmp_path / "shop-artifacts",
        dataset_group=group,
        recipe="user-personalization",
        solution="recs",
        hyperparameters=UP,
        metrics=False,
    )
    store.create_campaign("recs", version.id)
    key, _ = store.create_api_key(group, "secret")
    store.close()
    return {"db": db, "group": group, "version": version.id, "key": key}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_retrains_in_the_background_and_keeps_answering(deployed, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [*SHELFWISE, "serve", "--db", deployed["db"], "--port", str(port), "--workers", "2", *("--update-every", "2s")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    url = f"http://127.0.0.1:{port}"
    store = Store(deployed["db"])

    def recommend() -> requests.Response:
        return requests.post(
            url + "/v1/recommendations",
            timeout=10,
            headers={"Authorization": f"Bearer {deployed['key']}"},
            json={"campaign": "recs", "userId": "u0", "numResults": 3},
        )

    try:
        deadline = time.monotonic() + 60  # each worker and the scheduler import the engine: slow when busy
        version = deployed["version"]
        while time.monotonic() < deadline and version == deployed["version"]:
            assert server.poll() is None, server.stdout.read().decode()
            version = store.get_campaign(deployed["group"], "recs").solution_version_id
            time.sleep(0.2)
        assert version != deployed["version"], "the campaign never moved to a retrained version"
        assert store.get_solution_version(version).training_mode == "UPDATE"
        r = recommend()
        assert r.status_code == 200, r.text
        assert len(r.json()["itemList"]) == 3
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
        store.close()
    assert server.returncode is not None
    assert output.count("retraining schedule runs in this process") == 1, output
    assert "retrain " in output and "UPDATE version sv-" in output, output


def test_retrain_due_runs_what_is_due_once_for_cron(deployed, capsys, monkeypatch):
    monkeypatch.setenv("SHELFWISE_TRAINING_METRICS", "0")
    assert main(["retrain", "--list", "--json", "--db", deployed["db"]]) == 0
    [row] = json.loads(capsys.readouterr().out)["solutions"]
    assert (row["solution"], row["campaigns"], row["dueNow"]) == ("recs", ["recs"], None)
    assert row["lastFull"] == row["lastVersion"] < row["nextUpdate"] < row["nextFull"]  # 2 hours, 7 days

    assert main(["retrain", "--due", "--db", deployed["db"]]) == 0
    assert capsys.readouterr().out.strip() == "nothing was due"

    time.sleep(1.1)
    assert main(["retrain", "--due", "--json", "--update-every", "1s", "--db", deployed["db"]]) == 0
    [run] = json.loads(capsys.readouterr().out)["runs"]
    assert (run["solution"], run["trainingMode"], run["campaigns"]) == ("recs", "UPDATE", ["recs"])
    store = Store(deployed["db"])
    assert store.get_campaign(deployed["group"], "recs").solution_version_id == run["solutionVersionId"]
    store.close()


def test_bad_durations_are_clear_errors(deployed, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_:
        main(["retrain", "--due", "--full-every", "weekly", "--db", deployed["db"]])
    assert exit_.value.code == 2
    assert "argument --full-every: invalid duration 'weekly'" in capsys.readouterr().err
    monkeypatch.setenv("SHELFWISE_RETRAIN_UPDATE_EVERY", "2 hours")
    assert main(["retrain", "--due", "--db", deployed["db"]]) == 1
    assert capsys.readouterr().err.startswith("shelfwise: error: SHELFWISE_RETRAIN_UPDATE_EVERY: invalid duration")
