"""The command-line contract, run as a user runs it: the installed ``shelfwise`` in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

SHELFWISE = [sys.executable, "-m", "engine.cli"]


def run(*args: str, db: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*SHELFWISE, *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"shelfwise {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The sample store as Personalize CSV files, written by the demo's own exporter."""
    from engine.demo.sample_store import export_personalize_csv, generate_sample_store

    out = tmp_path_factory.mktemp("export")
    export_personalize_csv(generate_sample_store(n_users=300, n_items=80), out)
    return out


def test_the_whole_path_import_train_deploy_keys(db, exported, tmp_path):
    created = json.loads(run("dataset-group", "create", "shop", "--domain", "ECOMMERCE", "--json", db=db).stdout)
    assert created["arn"].endswith(":dataset-group/shop")
    for kind in ("items", "users", "interactions"):
        report = json.loads(
            run(
                "import",
                kind,
                str(exported / f"{kind}.csv"),
                "--dataset-group",
                "shop",
                "--schema",
                str(exported / f"{kind}-schema.json"),
                "--json",
                db=db,
            ).stdout
        )
        assert report["ok"] and report["imported"][kind] > 0
    version_id = run(
        "train",
        "--dataset-group",
        "shop",
        "--recipe",
        "user-personalization",
        "--solution",
        "sol",
        "--hyperparameters",
        '{"factors": 8, "iterations": 5}',
        db=db,
    ).stdout.strip()
    assert version_id.startswith("sv-")
    info = json.loads(
        run(
            "train",
            "--dataset-group",
            "shop",
            "--recipe",
            "user-personalization",
            "--solution",
            "sol",
            "--mode",
            "update",
            "--json",
            db=db,
        ).stdout
    )
    assert info["trainingMode"] == "UPDATE" and Path(info["artifact"]).exists()
    campaign = json.loads(
        run("campaign", "create", "for-you", "--solution-version", version_id, "--json", db=db).stdout
    )
    assert campaign["arn"].endswith(":campaign/for-you") and campaign["recipe"] == "user-personalization"
    keys = json.loads(
        run("keys", "create", "--dataset-group", "shop", "--origin", "https://shop.example", "--json", db=db).stdout
    )
    assert keys["publicKey"].startswith("pk_") and keys["secretKey"].startswith("sk_")
    assert len(keys["accessKeyId"]) == 20 and len(keys["secretAccessKey"]) == 40
    master_key = tmp_path / "cli-artifacts" / ".." / "shelfwise-master.key"
    assert master_key.exists() and oct(master_key.stat().st_mode & 0o777) == "0o600"
    from engine.storage import Store

    with Store(db).engine.connect() as conn:
        from sqlalchemy import text

        stored = conn.execute(text("select secret_encrypted from access_keys")).scalar()
    assert keys["secretAccessKey"] not in stored
    recommender = json.loads(
        run(
            "recommender",
            "create",
            "for-you-preset",
            "--dataset-group",
            "shop",
            "--recipe",
            "aws-ecomm-recommended-for-you",
            "--json",
            db=db,
        ).stdout
    )
    assert recommender["arn"].endswith(":recommender/for-you-preset") and recommender["solutionVersionId"]
    tracker = json.loads(run("event-tracker", "create", "site", "--dataset-group", "shop", "--json", db=db).stdout)
    assert len(tracker["trackingId"]) == 36
    connected = json.loads(
        run("connect", "shopify", "--dataset-group", "shop", "--secret", "s3cret", "--json", db=db).stdout
    )
    assert connected["webhookPath"] == "/webhooks/shopify/shop"


def test_the_recipe_arn_form_is_accepted(db, exported):
    run("dataset-group", "create", "shop", db=db)
    run("import", "interactions", str(exported / "interactions.csv"), "--dataset-group", "shop", db=db)
    out = run(
        "train",
        "--dataset-group",
        "shop",
        "--recipe",
        "arn:aws:personalize:::recipe/aws-popularity-count",
        "--solution",
        "pop",
        "--json",
        db=db,
    ).stdout
    assert json.loads(out)["recipe"] == "popularity-count"


def test_a_bad_import_reports_every_bad_line_and_imports_nothing(db, tmp_path):
    run("dataset-group", "create", "shop", db=db)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu1,p1,1700000000,view\nu2,p2,soon,view\nu3,,1700000001,view\n"
    )
    result = run("import", "interactions", str(bad), "--dataset-group", "shop", db=db, check=False)
    assert result.returncode == 1
    assert "line 3, column TIMESTAMP" in result.stderr and "line 4, column ITEM_ID" in result.stderr
    assert "nothing was imported" in result.stderr
    from engine.storage import Store

    assert Store(db).count_interactions("shop") == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("dataset-group", "create", "bad name"), "invalid dataset group name"),
        (("train", "--dataset-group", "missing", "--recipe", "sims", "--solution", "s"), "does not exist"),
        (("train", "--dataset-group", "shop", "--recipe", "magic", "--solution", "s"), "unknown recipe"),
        (("train", "--dataset-group", "shop", "--recipe", "sims", "--solution", "s"), "no interactions"),
        (
            ("train", "--dataset-group", "shop", "--recipe", "sims", "--solution", "s", "--hyperparameters", "{x"),
            "not valid JSON",
        ),
        (
            ("train", "--dataset-group", "shop", "--recipe", "sims", "--solution", "s", "--mode", "update"),
            "no version yet",
        ),
        (("campaign", "create", "c", "--solution-version", "sv-nope"), "does not exist"),
        (
            ("campaign", "create", "c", "--solution-version", "sv-x", "--config", '{"explorationWeight": 2}'),
            "explorationWeight",
        ),
        (
            ("campaign", "create", "c", "--solution-version", "x", "--config", '{"syncWithLatestSolutionVersion": 0}'),
            "syncWithLatestSolutionVersion must be true or false",
        ),
        (
            ("campaign", "create", "c", "--solution-version", "x", "--config", '{"approximateCandidates": "yes"}'),
            "approximateCandidates must be true, false or",
        ),
        (("import", "items", "/no/such/file.csv", "--dataset-group", "shop"), "file.csv"),
        (("connect", "myspace", "--dataset-group", "shop", "--secret", "x"), "unknown platform"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(db, args, says):
    run("dataset-group", "create", "shop", db=db)
    result = run(*args, db=db, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shelfwise: error:") and says in lines[0], result.stderr


def test_demo_sets_everything_up_quickly_and_exports_csv(tmp_path):
    started = time.perf_counter()
    result = run(
        "demo",
        "--no-serve",
        "--json",
        "--export",
        str(tmp_path / "export"),
        db=f"sqlite:///{tmp_path}/demo.db",
        cwd=tmp_path,
    )
    assert time.perf_counter() - started < 60
    summary = json.loads(result.stdout)
    assert summary["storefront"] == "http://127.0.0.1:8000/demo/"
    assert {"recommended-for-you", "customers-also-bought", "best-sellers"} == set(summary["campaigns"])
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [
        "interactions-schema.json",
        "interactions.csv",
        "items-schema.json",
        "items.csv",
        "users-schema.json",
        "users.csv",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_gunicorn_workers_that_answer(tmp_path):
    db = f"sqlite:///{tmp_path}/demo.db"
    summary = json.loads(run("demo", "--no-serve", "--json", db=db, cwd=tmp_path).stdout)
    port = free_port()
    server = subprocess.Popen(
        [*SHELFWISE, "serve", "--db", db, "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60  # each gunicorn worker imports the app: slow on a busy machine
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                if requests.get(url + "/health", timeout=1).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        r = requests.post(
            url + "/v1/recommendations",
            timeout=10,
            headers={"Authorization": f"Bearer {summary['secret_key']}"},
            json={"campaign": "recommended-for-you", "userId": summary["shopper_id"], "numResults": 3},
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["itemList"]) == 3
    finally:
        server.terminate()
        server.wait(10)
