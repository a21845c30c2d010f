"""``shelfwise batch-inference`` and ``shelfwise batch-segment`` through the command line's own entry point."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.jobs.train import train
from engine.storage import Store
from tests.engine.jobs.test_batch import ALS, fill


@pytest.fixture
def setup(tmp_path):
    db = f"sqlite:///{tmp_path}/cli.db"
    store = Store(db)
    fill(store)
    version = train(
        store,
        tmp_path / "artifacts",
        dataset_group="shop",
        recipe="user-personalization",
        solution="s",
        hyperparameters=ALS,
    ).id
    store.close()
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"userId": f"u{n}"}) + "\n" for n in range(50)) + '{"userId": 5}\n')
    return db, version, src


def test_batch_inference_reports_lines_errors_and_throughput(setup, tmp_path, capsys):
    db, version, src = setup
    args = ["batch-inference", "--db", db, "--dataset-group", "shop", "--solution-version", version]
    assert main([*args, "--input", str(src), "--output", str(tmp_path / "out.jsonl"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lines"] == 51 and report["errors"] == 1 and report["linesPerSecond"] > 0
    assert report["sampleErrors"] == ["line 51: userId must be a non-empty string of at most 256 characters"]
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 51

    assert main([*args, "--input", str(src), "--output", str(tmp_path / "again.jsonl"), "--num-results", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("wrote 51 lines to ") and captured.out.rstrip().endswith("lines/s")
    assert "1 lines could not be answered" in captured.err
    assert all(
        len(json.loads(line).get("output", {}).get("recommendedItems", [1, 2, 3])) == 3
        for line in (tmp_path / "again.jsonl").read_text().splitlines()
    )


def test_errors_are_one_line_and_a_non_zero_exit(setup, tmp_path, capsys):
    db, version, src = setup
    common = ["--db", db, "--dataset-group", "shop", "--input", str(src), "--output", str(tmp_path / "o")]
    assert main(["batch-inference", *common, "--solution-version", version, "--filter", "missing"]) == 1
    assert capsys.readouterr().err == "shelfwise: error: filter 'missing' does not exist in 'shop'\n"
    assert main(["batch-segment", *common, "--solution-version", version]) == 1
    assert "does not make user segments" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_progress_bar_only_for_a_person_at_a_terminal(tmp_path, monkeypatch):
    import argparse
    import sys

    from engine.commands.batch import _progress_bar

    src = tmp_path / "in.jsonl"
    src.write_text('{"userId": "a"}\n' * 7)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bar = _progress_bar(argparse.Namespace(json=False, input=str(src)))
    assert bar is not None and bar.total == 7
    bar.close()
    assert _progress_bar(argparse.Namespace(json=True, input=str(src))) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert _progress_bar(argparse.Namespace(json=False, input=str(src))) is None
