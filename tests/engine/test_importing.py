"""Bulk CSV import: Personalize's layout, row validation with line numbers, all-or-nothing ingest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InvalidInput, NotFound
from engine.importing import (
    DEFAULT_EVENT_TYPE,
    ImportErrorLine,
    default_schema,
    format_error,
    import_file,
    load_schema,
    read_csv,
    validate_schema,
)
from engine.records import Interaction, Item, User
from engine.storage.store import Store

GROUP = "shop"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/t.db")
    s.create_dataset_group(GROUP)
    yield s
    s.close()


def write(tmp_path: Path, name: str, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding, newline="")
    return path


def write_schema(tmp_path: Path, name: str, fields: list[dict[str, Any]]) -> Path:
    schema = {
        "type": "record",
        "name": name,
        "namespace": "com.amazonaws.personalize.schema",
        "fields": fields,
        "version": "1.0",
    }
    path = tmp_path / f"{name.lower()}-schema.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


# The Interactions example of Personalize's developer guide (reference §2.2), with IMPRESSION nullable.
INTERACTIONS_FIELDS = [
    {"name": "USER_ID", "type": "string"},
    {"name": "ITEM_ID", "type": "string"},
    {"name": "EVENT_TYPE", "type": "string"},
    {"name": "EVENT_VALUE", "type": ["float", "null"]},
    {"name": "LOCATION", "type": "string", "categorical": True},
    {"name": "DEVICE", "type": ["string", "null"], "categorical": True},
    {"name": "TIMESTAMP", "type": "long"},
    {"name": "IMPRESSION", "type": ["string", "null"]},
]
INTERACTIONS_CSV = (
    "USER_ID,ITEM_ID,EVENT_TYPE,EVENT_VALUE,LOCATION,DEVICE,TIMESTAMP,IMPRESSION\n"
    "35,73,click,,Ohio,Tablet,1586731606,73|70|17\n"
    "54,35,watch,0.75,Indiana,,1586735164,\n"
)

ITEMS_FIELDS = [
    {"name": "ITEM_ID", "type": "string"},
    {"name": "GENRES", "type": ["null", "string"], "categorical": True},
    {"name": "PRICE", "type": "float"},
    {"name": "STOCK", "type": ["int", "null"]},
    {"name": "ON_SALE", "type": ["boolean", "null"]},
    {"name": "CREATION_TIMESTAMP", "type": "long"},
    {"name": "DESCRIPTION", "type": ["null", "string"], "textual": True},
]


def errors_of(result: Any) -> list[tuple[int, str | None]]:
    return [(e.line, e.column) for e in result.errors]


# --------------------------------------------------------------------------- good files
def test_interactions_import_with_schema_file(store: Store, tmp_path: Path) -> None:
    csv_path = write(tmp_path, "i.csv", INTERACTIONS_CSV)
    schema_path = write_schema(tmp_path, "Interactions", INTERACTIONS_FIELDS)

    report = import_file(store, GROUP, "interactions", csv_path, schema_path=schema_path)

    assert report.ok, report.errors
    assert report.rows == 2
    assert report.imported == {"interactions": 2, "items": 0, "users": 0}
    assert report.schema_source == "file"
    assert store.count_interactions(GROUP) == 2
    assert store.get_schema(GROUP, "interactions")["fields"] == INTERACTIONS_FIELDS

    events = {e.user_id: e for e in store.latest_events(GROUP, "35") + store.latest_events(GROUP, "54")}
    assert events["35"].event_type == "click"
    assert events["35"].event_value is None
    assert events["35"].timestamp == 1586731606.0
    assert events["54"].event_value == 0.75


def test_interaction_records_have_right_types_and_context(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "i.csv", INTERACTIONS_CSV)
    schema = load_schema(write_schema(tmp_path, "Interactions", INTERACTIONS_FIELDS))

    result = read_csv(csv_path, "interactions", schema)

    assert result.ok and result.rows == 2 and result.schema == schema
    first, second = result.records
    assert first == Interaction(
        user_id="35",
        item_id="73",
        event_type="click",
        timestamp=1586731606.0,
        event_value=None,
        impression=("73", "70", "17"),
        context={"LOCATION": "Ohio", "DEVICE": "Tablet"},
    )
    assert isinstance(second.event_value, float) and second.event_value == 0.75
    assert second.impression == ()
    assert second.context == {"LOCATION": "Indiana"}  # the null DEVICE is left out


def test_reserved_columns_map_to_interaction_fields(tmp_path: Path) -> None:
    csv_path = write(
        tmp_path,
        "i.csv",
        "USER_ID,ITEM_ID,TIMESTAMP,RECOMMENDATION_ID,EVENT_ATTRIBUTION_SOURCE\nu1,i1,1700000000,rid-1,email\n",
    )
    result = read_csv(csv_path, "interactions", None)

    assert result.ok
    (event,) = result.records
    assert event.recommendation_id == "rid-1"
    assert event.event_type == DEFAULT_EVENT_TYPE
    assert event.context == {"EVENT_ATTRIBUTION_SOURCE": "email"}
    assert any("EVENT_TYPE" in w for w in result.warnings)


def test_items_import_types_and_creation_timestamp(store: Store, tmp_path: Path) -> None:
    csv_path = write(
        tmp_path,
        "items.csv",
        "ITEM_ID,GENRES,PRICE,STOCK,ON_SALE,CREATION_TIMESTAMP,DESCRIPTION\n"
        'i1,Adventure|Comedy,9.99,3,true,1570003267,"Funny, and for children."\n'
        "i2,,12,,false,1570003268,\n",
    )
    schema_path = write_schema(tmp_path, "Items", ITEMS_FIELDS)

    report = import_file(store, GROUP, "items", csv_path, schema_path=schema_path)

    assert report.ok, report.errors
    assert report.imported["items"] == 2
    items = store.items(GROUP)
    assert items["i1"] == Item(
        "i1",
        {
            "GENRES": "Adventure|Comedy",
            "PRICE": 9.99,
            "STOCK": 3,
            "ON_SALE": True,
            "DESCRIPTION": "Funny, and for children.",
        },
        1570003267.0,
    )
    assert items["i2"].properties == {"PRICE": 12.0, "ON_SALE": False}
    assert isinstance(items["i2"].properties["PRICE"], float)
    assert isinstance(items["i1"].properties["STOCK"], int)


def test_users_import(store: Store, tmp_path: Path) -> None:
    csv_path = write(tmp_path, "users.csv", "USER_ID,AGE,GENDER\n5,34,Male\n6,,Female\n")
    schema_path = write_schema(
        tmp_path,
        "Users",
        [
            {"name": "USER_ID", "type": "string"},
            {"name": "AGE", "type": ["int", "null"]},
            {"name": "GENDER", "type": "string", "categorical": True},
        ],
    )

    report = import_file(store, GROUP, "users", csv_path, schema_path=schema_path)

    assert report.ok and report.imported["users"] == 2
    assert store.users(GROUP) == {
        "5": User("5", {"AGE": 34, "GENDER": "Male"}),
        "6": User("6", {"GENDER": "Female"}),
    }


def test_default_schema_is_stored_and_reused(store: Store, tmp_path: Path) -> None:
    first = write(tmp_path, "a.csv", "user_id,item_id,timestamp,device\nu1,i1,1700000000,phone\n")
    report = import_file(store, GROUP, "interactions", first)
    assert report.ok and report.schema_source == "default"
    stored = store.get_schema(GROUP, "interactions")
    assert [f["name"] for f in stored["fields"]] == ["USER_ID", "ITEM_ID", "TIMESTAMP", "DEVICE"]

    second = write(tmp_path, "b.csv", "USER_ID,ITEM_ID,TIMESTAMP,DEVICE\nu2,i2,1700000001,tablet\n")
    report = import_file(store, GROUP, "interactions", second)
    assert report.ok and report.schema_source == "stored"
    assert store.count_interactions(GROUP) == 2

    # The stored schema decides the columns of later files.
    third = write(tmp_path, "c.csv", "USER_ID,ITEM_ID,TIMESTAMP\nu3,i3,1700000002\n")
    with pytest.raises(InvalidInput, match="stored for dataset group"):
        import_file(store, GROUP, "interactions", third)


def test_schema_file_takes_precedence_over_stored(store: Store, tmp_path: Path) -> None:
    import_file(store, GROUP, "users", write(tmp_path, "a.csv", "USER_ID,TIER\nu1,gold\n"))
    schema_path = write_schema(
        tmp_path, "Users", [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"}]
    )
    report = import_file(store, GROUP, "users", write(tmp_path, "b.csv", "USER_ID,AGE\nu2,40\n"), schema_path)
    assert report.ok and report.schema_source == "file"
    assert any("replaces" in w for w in report.warnings)
    assert store.users(GROUP)["u2"].properties == {"AGE": 40}


# --------------------------------------------------------------------------- CSV syntax
def test_quoted_text_with_commas_and_both_quote_escapes(tmp_path: Path) -> None:
    csv_path = write(
        tmp_path,
        "items.csv",
        "ITEM_ID,DESCRIPTION\n"
        'i1,"He said \\"hi\\", then left"\n'
        'i2,"He said ""hi"", then left"\n'
        'i3,"a backslash \\\\ here"\n'
        'i4,"two\nlines"\n'
        "i5,plain\n",
    )
    result = read_csv(csv_path, "items", None)

    assert result.ok, result.errors
    descriptions = {r.item_id: r.properties["DESCRIPTION"] for r in result.records}
    assert descriptions == {
        "i1": 'He said "hi", then left',
        "i2": 'He said "hi", then left',
        "i3": "a backslash \\ here",
        "i4": "two\nlines",
        "i5": "plain",
    }


def test_bom_and_crlf(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "u.csv", "\ufeffUSER_ID,SEGMENT\r\nu1,a\r\nu2,b\r\n")
    result = read_csv(csv_path, "users", None)
    assert result.ok
    assert [r.user_id for r in result.records] == ["u1", "u2"]
    assert result.schema["fields"][0]["name"] == "USER_ID"


def test_multi_valued_categorical_kept_raw(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "items.csv", "ITEM_ID,GENRES\ni1,Adventure|Comedy\n")
    (item,) = read_csv(csv_path, "items", None).records
    assert item.properties == {"GENRES": "Adventure|Comedy"}


def test_malformed_quoting_is_a_row_error(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "u.csv", 'USER_ID,SEGMENT\nu1,"bad"x\nu2,ok\n')
    result = read_csv(csv_path, "users", None)
    assert errors_of(result) == [(2, None)]
    assert "malformed CSV" in result.errors[0].reason
    assert [r.user_id for r in result.records] == ["u2"]


# --------------------------------------------------------------------------- row errors
def read_interactions(tmp_path: Path, body: str) -> Any:
    header = "USER_ID,ITEM_ID,EVENT_TYPE,EVENT_VALUE,LOCATION,DEVICE,TIMESTAMP,IMPRESSION\n"
    schema = load_schema(write_schema(tmp_path, "Interactions", INTERACTIONS_FIELDS))
    return read_csv(write(tmp_path, "i.csv", header + body), "interactions", schema)


GOOD = "u,i,click,,Ohio,Tablet,1586731606,\n"


@pytest.mark.parametrize(
    ("bad_row", "column", "reason"),
    [
        ("u,i,click,,Ohio,,12a,\n", "TIMESTAMP", "not an integer: '12a'"),
        ("u,i,click,,Ohio,,1586731606.5,\n", "TIMESTAMP", "not an integer"),
        ("u,i,click,,Ohio,,1586731606000,\n", "TIMESTAMP", "milliseconds"),
        ("u,i,click,,Ohio,,-5,\n", "TIMESTAMP", "negative"),
        ("u,i,click,,Ohio,,,\n", "TIMESTAMP", "missing value"),
        (",i,click,,Ohio,,1586731606,\n", "USER_ID", "missing value"),
        ("u,i,click,,,,1586731606,\n", "LOCATION", "not nullable"),
        ("u,i,click,high,Ohio,,1586731606,\n", "EVENT_VALUE", "not a number: 'high'"),
        ("u,i,click,1_0,Ohio,,1586731606,\n", "EVENT_VALUE", "not a number"),
        ("u,i,click,nan,Ohio,,1586731606,\n", "EVENT_VALUE", "not a number"),
        ("u," + "x" * 257 + ",click,,Ohio,,1586731606,\n", "ITEM_ID", "longer than 256 characters (257)"),
        ("u,i,click,,Ohio,,1586731606\n", None, "expected 8 cells, found 7"),
        ("u,i,click,,Ohio,,1586731606,,extra\n", None, "expected 8 cells, found 9"),
        ("u,i,click,,Ohio," + "d" * 1001 + ",1586731606,\n", "DEVICE", "longer than 1000 characters"),
    ],
)
def test_each_row_error_has_line_and_column(tmp_path: Path, bad_row: str, column: str | None, reason: str) -> None:
    result = read_interactions(tmp_path, GOOD + GOOD + bad_row + GOOD)

    assert result.rows == 4
    assert errors_of(result) == [(4, column)]  # header is line 1, so the third data row is line 4
    assert reason in result.errors[0].reason
    assert len(result.records) == 3


def test_boolean_must_be_lower_case(tmp_path: Path) -> None:
    schema = load_schema(
        write_schema(tmp_path, "Users", [{"name": "USER_ID", "type": "string"}, {"name": "VIP", "type": "boolean"}])
    )
    result = read_csv(write(tmp_path, "u.csv", "USER_ID,VIP\nu1,true\nu2,True\n"), "users", schema)
    assert errors_of(result) == [(3, "VIP")]
    assert "lower-case" in result.errors[0].reason
    assert result.records == [User("u1", {"VIP": True})]


def test_millisecond_creation_timestamp_rejected(tmp_path: Path) -> None:
    result = read_csv(write(tmp_path, "items.csv", "ITEM_ID,CREATION_TIMESTAMP\ni1,1570003267000\n"), "items", None)
    assert errors_of(result) == [(2, "CREATION_TIMESTAMP")]
    assert "milliseconds" in result.errors[0].reason


def test_line_numbers_count_multiline_values_and_blank_lines(tmp_path: Path) -> None:
    csv_path = write(
        tmp_path,
        "items.csv",
        'ITEM_ID,DESCRIPTION,CREATION_TIMESTAMP\ni1,"one\ntwo\nthree",1\n\ni2,x,oops\n',
    )
    result = read_csv(csv_path, "items", None)
    assert result.rows == 2
    assert errors_of(result) == [(6, "CREATION_TIMESTAMP")]


def test_all_errors_of_a_file_are_collected(tmp_path: Path) -> None:
    result = read_interactions(tmp_path, "u,i,click,x,Ohio,,12a,\n" + GOOD + "u,i\n")
    assert errors_of(result) == [(2, "EVENT_VALUE"), (2, "TIMESTAMP"), (4, None)]
    assert result.error_count == 3


# --------------------------------------------------------------------------- all-or-nothing
def test_any_bad_row_means_nothing_is_ingested(store: Store, tmp_path: Path) -> None:
    rows = "".join(f"u{n},i{n},{1700000000 + n}\n" for n in range(20))
    csv_path = write(tmp_path, "i.csv", "USER_ID,ITEM_ID,TIMESTAMP\n" + rows + "u99,i99,17000000000000\n")

    report = import_file(store, GROUP, "interactions", csv_path)

    assert not report.ok
    assert report.rows == 21
    assert report.imported == {"interactions": 0, "items": 0, "users": 0}
    assert [(e.line, e.column) for e in report.errors] == [(22, "TIMESTAMP")]
    assert store.count_interactions(GROUP) == 0
    assert store.get_schema(GROUP, "interactions") is None  # not even the schema is kept


def test_report_caps_errors_but_counts_them_all(store: Store, tmp_path: Path) -> None:
    rows = "".join(f"u{n},i{n},bad\n" for n in range(30))
    csv_path = write(tmp_path, "i.csv", "USER_ID,ITEM_ID,TIMESTAMP\n" + rows)

    report = import_file(store, GROUP, "interactions", csv_path, max_errors=5)

    assert not report.ok
    assert len(report.errors) == 5 and report.error_count == 30
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["error_count"] == 30 and data["errors_truncated"] is True
    assert data["errors"][0] == {"line": 2, "column": "TIMESTAMP", "reason": "not an integer: 'bad'"}


def test_format_error() -> None:
    assert format_error(ImportErrorLine(17, "TIMESTAMP", "not an integer: '12a'")) == (
        "line 17, column TIMESTAMP: not an integer: '12a'"
    )
    assert format_error(ImportErrorLine(3, None, "expected 3 cells, found 4")) == "line 3: expected 3 cells, found 4"
    assert str(ImportErrorLine(2, "X", "y")) == "line 2, column X: y"


# --------------------------------------------------------------------------- fatal errors
def test_column_order_must_match_schema(store: Store, tmp_path: Path) -> None:
    schema_path = write_schema(tmp_path, "Interactions", INTERACTIONS_FIELDS)
    csv_path = write(
        tmp_path,
        "i.csv",
        "ITEM_ID,USER_ID,EVENT_TYPE,EVENT_VALUE,LOCATION,DEVICE,TIMESTAMP,IMPRESSION\n73,35,click,,Ohio,,1,\n",
    )
    with pytest.raises(InvalidInput, match="field order") as info:
        import_file(store, GROUP, "interactions", csv_path, schema_path=schema_path)
    assert "\n" not in info.value.message
    assert store.count_interactions(GROUP) == 0


def test_header_with_missing_or_unknown_columns(tmp_path: Path) -> None:
    schema = load_schema(write_schema(tmp_path, "Interactions", INTERACTIONS_FIELDS))
    csv_path = write(tmp_path, "i.csv", "USER_ID,ITEM_ID,TIMESTAMP,COLOUR\nu,i,1,red\n")
    with pytest.raises(InvalidInput, match=r"missing column.*EVENT_TYPE.*not in the schema: COLOUR"):
        read_csv(csv_path, "interactions", schema)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "header row is required"),
        (b"\n\n", "header row is required"),
        (b"USER_ID,SEGMENT\nu1,caf\xe9\n", "not UTF-8"),
        (b"USER_ID,USER_ID\nu1,u1\n", "duplicate field names"),
        (b"USER_ID,,SEGMENT\nu1,,a\n", "empty column name"),
        (b"SEGMENT\na\n", "missing required field"),
    ],
)
def test_fatal_file_errors(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=match):
        read_csv(path, "users", None)


def test_missing_file_and_bad_dataset_type(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="file not found"):
        read_csv(tmp_path / "nope.csv", "users", None)
    with pytest.raises(InvalidInput, match="invalid dataset type"):
        read_csv(write(tmp_path, "u.csv", "USER_ID\nu\n"), "actions", None)


def test_unknown_dataset_group(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        import_file(store, "other", "users", write(tmp_path, "u.csv", "USER_ID,X\nu,1\n"))


def test_bad_schema_json(store: Store, tmp_path: Path) -> None:
    schema_path = tmp_path / "s.json"
    schema_path.write_text('{"type": "record", "fields": [],}', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"not valid JSON.*line 1"):
        load_schema(schema_path)
    with pytest.raises(InvalidInput, match="schema file not found"):
        import_file(store, GROUP, "users", write(tmp_path, "u.csv", "USER_ID\nu\n"), tmp_path / "missing.json")
    schema_path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InvalidInput, match="JSON object"):
        load_schema(schema_path)


# --------------------------------------------------------------------------- minimum-data warnings
def test_small_import_warns_below_minimum(store: Store, tmp_path: Path) -> None:
    report = import_file(store, GROUP, "interactions", write(tmp_path, "i.csv", INTERACTIONS_CSV))
    assert report.ok
    below = [w for w in report.warnings if "suggested minimum" in w]
    assert len(below) == 3  # interactions, users and items
    assert any("2 interactions" in w for w in below)


def test_big_enough_import_has_no_minimum_warning(store: Store, tmp_path: Path) -> None:
    lines = ["USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP"]
    for u in range(60):
        for j in range(30):
            lines.append(f"user{u},item{(u * 7 + j) % 80},view,{1700000000 + u * 100 + j}")
    csv_path = write(tmp_path, "i.csv", "\n".join(lines) + "\n")

    report = import_file(store, GROUP, "interactions", csv_path)

    assert report.ok and report.imported["interactions"] == 1800
    assert store.count_interactions(GROUP) == 1800
    assert not [w for w in report.warnings if "suggested minimum" in w], report.warnings


def test_minimum_counts_whole_group_across_imports(store: Store, tmp_path: Path) -> None:
    def events(users: range, start: int) -> Path:
        rows = [f"user{u},item{(u + j) % 60},{start + u * 50 + j}" for u in users for j in range(25)]
        return write(tmp_path, f"i{start}.csv", "USER_ID,ITEM_ID,TIMESTAMP\n" + "\n".join(rows) + "\n")

    first = import_file(store, GROUP, "interactions", events(range(0, 30), 1600000000))
    assert any("30 users" in w for w in first.warnings)
    second = import_file(store, GROUP, "interactions", events(range(30, 60), 1700000000))
    assert not [w for w in second.warnings if "suggested minimum" in w], second.warnings


def test_items_minimum_warning(store: Store, tmp_path: Path) -> None:
    small = import_file(store, GROUP, "items", write(tmp_path, "a.csv", "ITEM_ID,GENRES\ni1,a\n"))
    assert any("1 items" in w for w in small.warnings)
    rows = "".join(f"i{n},a\n" for n in range(50))
    big = import_file(store, GROUP, "items", write(tmp_path, "b.csv", "ITEM_ID,GENRES\n" + rows))
    assert not [w for w in big.warnings if "suggested minimum" in w]


def test_duplicate_ids_warn(tmp_path: Path) -> None:
    result = read_csv(write(tmp_path, "u.csv", "USER_ID,TIER\nu1,a\nu1,b\n"), "users", None)
    assert result.ok
    assert any("repeat" in w for w in result.warnings)


# --------------------------------------------------------------------------- schemas
def test_default_schema_types() -> None:
    header = [
        "USER_ID",
        "ITEM_ID",
        "TIMESTAMP",
        "EVENT_TYPE",
        "EVENT_VALUE",
        "IMPRESSION",
        "RECOMMENDATION_ID",
        "EVENT_ATTRIBUTION_SOURCE",
        "device",
    ]
    schema = default_schema("interactions", header)
    assert schema["type"] == "record" and schema["name"] == "Interactions"
    types = {f["name"]: f for f in schema["fields"]}
    assert [f["name"] for f in schema["fields"]] == [h.upper() for h in header]
    assert types["USER_ID"] == {"name": "USER_ID", "type": "string"}
    assert types["TIMESTAMP"]["type"] == "long"
    assert types["EVENT_TYPE"] == {"name": "EVENT_TYPE", "type": "string"}  # reserved: not categorical
    assert types["EVENT_VALUE"]["type"] == ["float", "null"]
    assert types["IMPRESSION"]["type"] == ["string", "null"]
    assert types["RECOMMENDATION_ID"]["type"] == ["string", "null"]
    assert types["DEVICE"] == {"name": "DEVICE", "type": ["string", "null"], "categorical": True}
    validate_schema(schema, "interactions")

    items = {
        f["name"]: f
        for f in default_schema(
            "items", ["ITEM_ID", "CREATION_TIMESTAMP", "PRICE", "PRODUCT_DESCRIPTION", "CATEGORY_L1"]
        )["fields"]
    }
    assert items["CREATION_TIMESTAMP"]["type"] == "long"
    assert items["PRICE"]["type"] == "float"
    assert items["PRODUCT_DESCRIPTION"].get("textual") is True
    assert items["CATEGORY_L1"].get("categorical") is True
    # Textual fields exist only in Items: elsewhere a *DESCRIPTION column is categorical.
    users = default_schema("users", ["USER_ID", "DESCRIPTION"])
    assert users["fields"][1].get("categorical") is True
    validate_schema(users, "users")


def schema_with(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "com.amazonaws.personalize.schema", "fields": fields}


@pytest.mark.parametrize(
    ("schema", "dataset_type", "match"),
    [
        (schema_with("Users", INTERACTIONS_FIELDS), "interactions", "name must be 'Interactions'"),
        ({**schema_with("Users", []), "type": "enum"}, "users", "type must be 'record'"),
        (schema_with("Users", []), "users", "non-empty 'fields'"),
        (
            schema_with("Interactions", INTERACTIONS_FIELDS[:2]),
            "interactions",
            r"missing required.*TIMESTAMP",
        ),
        (schema_with("Items", [{"name": "GENRES", "type": "string"}]), "items", r"missing required.*ITEM_ID"),
        (
            schema_with("Users", [{"name": "ITEM_ID", "type": "string"}]),
            "users",
            r"missing required.*USER_ID",
        ),
        (
            schema_with("Users", [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "integer"}]),
            "users",
            "unknown type 'integer'",
        ),
        (
            schema_with(
                "Users",
                [
                    {"name": "USER_ID", "type": "string"},
                    {"name": "TAGS", "type": {"type": "array", "items": "string"}},
                ],
            ),
            "users",
            "nested",
        ),
        (
            schema_with("Users", [{"name": "USER_ID", "type": "string"}, {"name": "TAGS", "type": "array"}]),
            "users",
            "flat",
        ),
        (
            schema_with("Users", [{"name": "USER_ID", "type": "string"}, {"name": "USER_ID", "type": "string"}]),
            "users",
            "duplicate field names",
        ),
        (
            schema_with(
                "Users",
                [
                    {"name": "USER_ID", "type": "string"},
                    {"name": "GENRES_FIELD_1", "type": "string"},
                    {"name": "GENRESFIELD1", "type": "string"},
                ],
            ),
            "users",
            "duplicate field names",
        ),
        (
            schema_with("Users", [{"name": "USER_ID", "type": "string"}, {"name": "A B", "type": "string"}]),
            "users",
            "invalid field name",
        ),
        (
            schema_with("Users", [{"name": "USER_ID", "type": ["string", "int"]}]),
            "users",
            "exactly one non-null type",
        ),
        (
            schema_with("Users", [{"name": "USER_ID", "type": ["string", "null"]}]),
            "users",
            "cannot be nullable",
        ),
        (
            schema_with(
                "Interactions",
                [
                    {"name": "USER_ID", "type": "string"},
                    {"name": "ITEM_ID", "type": "string"},
                    {"name": "TIMESTAMP", "type": "string"},
                ],
            ),
            "interactions",
            "TIMESTAMP must be of type int or long",
        ),
        (
            schema_with(
                "Users",
                [{"name": "USER_ID", "type": "string"}, {"name": "BIO", "type": "string", "textual": True}],
            ),
            "users",
            "textual fields are allowed only in an Items",
        ),
        (
            schema_with(
                "Users",
                [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int", "categorical": True}],
            ),
            "users",
            "only string fields",
        ),
        ("not a schema", "users", "JSON object"),
    ],
)
def test_validate_schema_errors(schema: Any, dataset_type: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        validate_schema(schema, dataset_type)


def test_validate_schema_accepts_documented_examples(tmp_path: Path) -> None:
    validate_schema(schema_with("Interactions", INTERACTIONS_FIELDS), "interactions")
    validate_schema(schema_with("Items", ITEMS_FIELDS), "ITEMS")
    validate_schema(
        schema_with(
            "Users",
            [
                {"name": "USER_ID", "type": "string"},
                {"name": "AGE", "type": "int"},
                {"name": "GENDER", "type": "string", "categorical": True},
            ],
        ),
        "Users",
    )
