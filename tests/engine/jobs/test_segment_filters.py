"""User filters on batch segments (EXCLUDE/INCLUDE UserID ...), end to end: a real store, trained
item-affinity and item-attribute-affinity models, JSON-lines files."""

from __future__ import annotations

import json

import pytest

from engine.errors import InvalidInput
from engine.jobs.batch import batch_segment
from engine.records import Interaction, User
from engine.serving.filters import create_filter
from engine.serving.filters_syntax import FilterSyntaxError
from tests.engine.jobs.test_batch import ALS, fill, read_lines, trained, write_lines

USERS_SCHEMA = {
    "type": "record",
    "name": "Users",
    "namespace": "com.amazonaws.personalize.schema",
    "version": "1.0",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "TIER", "type": "string", "categorical": True},
        {"name": "AGE", "type": "int"},
        {"name": "BIO", "type": ["null", "string"], "textual": True},
    ],
}


def tier(n: int) -> str:
    return "gold" if n % 4 == 0 else "basic"


@pytest.fixture
def shop(sqlite_store):
    """The batch tests' two taste clusters, plus a Users dataset: every fourth user is gold, ages
    20 + n. u58 and u59 are not in the Users dataset at all."""
    fill(sqlite_store)
    sqlite_store.put_schema("shop", "USERS", USERS_SCHEMA)
    sqlite_store.ingest("shop", [User(f"u{n}", {"TIER": tier(n), "AGE": 20 + n}) for n in range(58)])
    return sqlite_store


def segments(store, tmp_path, version: str, lines: list[dict], *, filter_name: str | None = None, n: int = 10):
    src = write_lines(tmp_path / "in.jsonl", *(json.dumps(line) for line in lines))
    out = tmp_path / "out.jsonl"
    batch_segment(
        store,
        dataset_group="shop",
        solution_version=version,
        input_path=src,
        output_path=out,
        num_results=n,
        filter_name=filter_name,
    )
    return read_lines(out)


def test_exclude_and_include_users_by_their_metadata(shop, tmp_path):
    version = trained(shop, tmp_path, "item-affinity", ALS)
    (everyone,) = segments(shop, tmp_path, version, [{"itemId": "a3"}], n=60)
    ranked = everyone["output"]["usersList"]

    (stray,) = segments(shop, tmp_path, version, [{"itemId": "a3", "filterValues": {"TIER": '"gold"'}}])
    assert stray["error"] == "filterValues were given, but the job has no filter"

    create_filter(shop, "shop", "no-gold", 'EXCLUDE UserID WHERE Users.TIER IN ("gold")')
    (line,) = segments(shop, tmp_path, version, [{"itemId": "a3"}], filter_name="no-gold")
    # The same ranking with gold users taken out, still 10 long.
    assert line["output"]["usersList"] == [u for u in ranked if u in ("u58", "u59") or tier(int(u[1:])) != "gold"][:10]

    create_filter(shop, "shop", "tier", "INCLUDE UserID WHERE Users.TIER IN ($TIER)")
    gold, basic, missing, bad = segments(
        shop,
        tmp_path,
        version,
        [
            {"itemId": "a3", "filterValues": {"TIER": '"gold"'}},
            {"itemId": "a3", "filterValues": {"TIER": '"basic"'}},
            {"itemId": "a3"},
            {"itemId": "a3", "filterValues": {"TIER": "gold"}},
        ],
        filter_name="tier",
    )
    assert (
        gold["output"]["usersList"]
        == [u for u in ranked if u not in ("u58", "u59") and tier(int(u[1:])) == "gold"][:10]
    )
    assert len(gold["output"]["usersList"]) == 10
    assert all(tier(int(u[1:])) == "basic" for u in basic["output"]["usersList"])
    assert "needs filterValues for $TIER" in missing["error"] and "output" not in missing
    assert "values must be quoted" in bad["error"]


def test_numeric_user_fields_and_users_the_users_dataset_lacks(shop, tmp_path):
    version = trained(shop, tmp_path, "item-affinity", ALS)
    create_filter(shop, "shop", "young", "EXCLUDE UserID WHERE Users.AGE >= $AGE")
    under_40, everyone = segments(
        shop,
        tmp_path,
        version,
        [{"itemId": "b3", "filterValues": {"AGE": "40"}}, {"itemId": "b3"}],  # no value: EXCLUDE is skipped
        filter_name="young",
        n=60,
    )
    kept = under_40["output"]["usersList"]
    # u58 and u59 have no AGE, so AGE >= 40 is false for them and they stay.
    assert set(kept) == {f"u{n}" for n in range(20)} | {"u58", "u59"}
    assert len(everyone["output"]["usersList"]) == 60


def test_users_selected_by_their_interactions(shop, tmp_path):
    version = trained(shop, tmp_path, "item-affinity", ALS)
    # Filters read the store as it is now: events sent after training count.
    shop.ingest("shop", [Interaction(f"u{n}", "a1", "Return", 1_800_000_000.0) for n in (0, 2, 4)])
    create_filter(shop, "shop", "returners", 'INCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("return")')
    create_filter(shop, "shop", "no-returners", "EXCLUDE UserID WHERE Interactions.EVENT_TYPE IN ($TYPES)")
    (only,) = segments(shop, tmp_path, version, [{"itemId": "a3"}], filter_name="returners")
    assert sorted(only["output"]["usersList"]) == ["u0", "u2", "u4"]
    (others,) = segments(
        shop, tmp_path, version, [{"itemId": "a3", "filterValues": {"TYPES": '"return"'}}], filter_name="no-returners"
    )
    assert len(others["output"]["usersList"]) == 10 and not {"u0", "u2", "u4"} & set(others["output"]["usersList"])


def test_item_attribute_affinity_takes_user_filters_but_not_interaction_ones(shop, tmp_path):
    version = trained(shop, tmp_path, "item-attribute-affinity", ALS)
    create_filter(shop, "shop", "gold-only", 'INCLUDE UserID WHERE Users.TIER = "gold"')
    query = {"itemAttributes": 'ITEMS.CATEGORY = "hats"'}
    (line,) = segments(shop, tmp_path, version, [query], filter_name="gold-only", n=60)
    # Gold users are the even ones (n % 4 == 0): all of them, however little they like hats.
    assert sorted(line["output"]["usersList"]) == sorted(f"u{n}" for n in range(0, 58, 4))
    create_filter(shop, "shop", "buyers", 'EXCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("purchase")')
    with pytest.raises(InvalidInput, match="item-attribute-affinity segments cannot use interaction filters"):
        segments(shop, tmp_path, version, [query], filter_name="buyers")


@pytest.mark.parametrize(
    ("expression", "at", "reason"),
    [
        (
            'EXCLUDE UserID WHERE Items.CATEGORY IN ("hats")',
            "Items.CATEGORY",
            "UserID filters work on Users or Interactions fields, not Items.CATEGORY",
        ),
        ('EXCLUDE UserID WHERE Users.COUNTRY IN ("UK")', "Users.COUNTRY", "the Users schema has no field COUNTRY"),
        ('EXCLUDE UserID WHERE Users.BIO IN ("x")', "Users.BIO", "textual fields cannot be filtered"),
        ("EXCLUDE UserID WHERE Users.TIER < 3", "Users.TIER", "< compares numbers, and Users.TIER is not numeric"),
        ("INCLUDE UserID WHERE Users.TIER NOT IN ($TIER)", "$TIER", "cannot be used with NOT IN"),
        ("EXCLUDE UserID WHERE Users.AGE < 30 IF CurrentUser.AGE > 3", "IF", "IF CurrentUser conditions apply only"),
        (
            'EXCLUDE UserID WHERE Users.TIER IN ("gold") AND Interactions.EVENT_TYPE IN ("view")',
            "Interactions.",
            "cannot mix Users and Interactions",
        ),
        (
            'EXCLUDE UserID WHERE Users.TIER IN ("gold") | EXCLUDE ItemID WHERE Items.X IN ("y")',
            "EXCLUDE ItemID",
            "same thing",
        ),
    ],
)
def test_a_bad_user_filter_is_refused_at_creation_with_position_and_reason(shop, expression, at, reason):
    position = expression.index(at) + 1  # Personalize-style 1-based character position
    with pytest.raises(FilterSyntaxError) as caught:
        create_filter(shop, "shop", "bad", expression)
    assert caught.value.position == position
    assert reason in caught.value.reason
    assert f"at position {position}" in caught.value.message


def test_the_command_line_takes_a_user_filter(shop, tmp_path, capsys):
    from engine.cli import main

    version = trained(shop, tmp_path, "item-affinity", ALS)
    create_filter(shop, "shop", "no-gold", 'EXCLUDE UserID WHERE Users.TIER IN ("gold")')
    src = write_lines(tmp_path / "in.jsonl", '{"itemId": "a3"}')
    common = ["batch-segment", "--db", shop.database_url, "--dataset-group", "shop", "--solution-version", version]
    assert main([*common, "--input", str(src), "--output", str(tmp_path / "o"), "--filter", "no-gold"]) == 0
    (line,) = read_lines(tmp_path / "o")
    assert len(line["output"]["usersList"]) == 25  # the default segment size
    assert all(tier(int(u[1:])) != "gold" for u in line["output"]["usersList"])
    capsys.readouterr()
    create_filter(shop, "shop", "hats", 'EXCLUDE ItemID WHERE Items.CATEGORY IN ("hats")')
    assert main([*common, "--input", str(src), "--output", str(tmp_path / "o2"), "--filter", "hats"]) == 1
    assert "user segments need a UserID filter" in capsys.readouterr().err


def test_every_users_event_types_are_read_once_each(store):
    from engine.storage.filters import users_event_types

    store.create_dataset_group("g")
    store.create_dataset_group("other")
    store.ingest(
        "g",
        [Interaction("u1", f"i{k}", "view", 100.0 + k) for k in range(3)]
        + [Interaction("u1", "i0", "purchase", 200.0), Interaction("u2", "i1", "view", 50.0)],
    )
    store.ingest("other", [Interaction("u3", "i0", "view", 1.0)])
    assert sorted(users_event_types(store, "g")) == [("u1", "purchase"), ("u1", "view"), ("u2", "view")]
