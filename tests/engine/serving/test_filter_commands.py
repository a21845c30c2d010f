"""`shelfwise filter ...`: the command-line contract for filters."""

from __future__ import annotations

import json

import pytest

from engine.cli import main


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    assert main(["dataset-group", "create", "shop", "--db", url]) == 0
    return url


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_filter_create_prints_the_arn_and_list_shows_it(db, capsys):
    expression = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
    code, out, _ = run(
        capsys, "filter", "create", "no-purchased", "--dataset-group", "shop", "--expression", expression, "--db", db
    )
    assert code == 0
    assert out.strip() == "arn:aws:personalize:us-east-1:000000000000:filter/no-purchased"

    code, out, _ = run(
        capsys, "filter", "create", "kitchen", "--dataset-group", "shop", "--json", "--db", db,
        "--expression", 'INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)',
    )  # fmt: skip
    created = json.loads(out)
    assert code == 0 and created["arn"].endswith(":filter/kitchen")
    assert created["name"] == "kitchen" and created["datasetGroup"] == "shop"

    code, out, _ = run(capsys, "filter", "list", "--dataset-group", "shop", "--json", "--db", db)
    listed = json.loads(out)["filters"]
    assert [(f["name"], f["expression"]) for f in listed] == [
        ("kitchen", "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"),
        ("no-purchased", expression),
    ]
    code, out, _ = run(capsys, "filter", "list", "--dataset-group", "shop", "--db", db)
    assert out.splitlines()[1] == f"no-purchased\t{expression}"

    assert run(capsys, "filter", "delete", "kitchen", "--dataset-group", "shop", "--db", db)[0] == 0
    code, out, _ = run(capsys, "filter", "list", "--dataset-group", "shop", "--json", "--db", db)
    assert [f["name"] for f in json.loads(out)["filters"]] == ["no-purchased"]


def test_a_bad_expression_is_one_line_with_the_position_and_exit_1(db, capsys):
    code, out, err = run(
        capsys, "filter", "create", "bad", "--dataset-group", "shop", "--db", db,
        "--expression", 'EXCLUDE ItemID WHERE Items.CATEGORY "shoe"',
    )  # fmt: skip
    assert code == 1 and out == ""
    assert err == (
        "shelfwise: error: invalid filter expression at position 37: expected IN, NOT IN or a comparison "
        '(=, !=, <, <=, >, >=) after Items.CATEGORY, found "shoe"\n'
    )
    code, out, _ = run(capsys, "filter", "list", "--dataset-group", "shop", "--json", "--db", db)
    assert code == 0 and json.loads(out)["filters"] == []  # nothing was stored


def test_a_duplicate_or_misplaced_filter_is_an_error(db, capsys):
    args = ["filter", "create", "f", "--expression", 'INCLUDE ItemID WHERE Items.X IN ("a")', "--db", db]
    assert run(capsys, *args, "--dataset-group", "shop")[0] == 0
    code, _, err = run(capsys, *args, "--dataset-group", "shop")
    assert code == 1 and err == "shelfwise: error: filter 'f' already exists in 'shop'\n"
    code, _, err = run(capsys, *args, "--dataset-group", "nowhere")
    assert code == 1 and "dataset group 'nowhere' does not exist" in err
