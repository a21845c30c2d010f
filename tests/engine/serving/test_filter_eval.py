"""What filters allow: the semantics on small catalogs, histories and shoppers, first in memory,
then read from the store (SQLite and PostgreSQL) the way requests read it."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import AlreadyExists, InvalidInput, NotFound
from engine.records import Erasure, Interaction, Item, User
from engine.serving.filters import FilterService, create_filter, filter_name_from
from engine.serving.filters_eval import EvaluationInput, evaluate, history_table, item_table, single_row
from engine.serving.filters_syntax import FilterSyntaxError, parse_filter
from engine.storage.filters import delete_filter, list_filters

ITEMS = {
    "boot1": Item("boot1", {"CATEGORY": "shoes|boots", "PRICE": 120.0, "COLOR": "brown"}, 1_700_000_000),
    "sneaker": Item("sneaker", {"CATEGORY": "shoes", "PRICE": 80, "COLOR": "white", "YEAR": "1970"}, 1_700_100_000),
    "sandal": Item("sandal", {"CATEGORY": "shoes|sale", "PRICE": "35.5", "COLOR": "Brown"}),
    "pan": Item("pan", {"CATEGORY": "kitchen", "PRICE": 25, "COLOR": "black", "categoryL1": "home"}),
    "knife": Item("knife", {"CATEGORY": "kitchen|sale", "PRICE": 40}),
}
#: What a model might know: the catalog plus an item that was never imported.
VOCAB = np.array(sorted([*ITEMS, "ghost"]))
ALL = set(VOCAB.tolist())


def allowed(expression, *, values=None, history=(), user=None, current=None, items=ITEMS) -> set[str]:
    catalog = item_table(items)
    data = EvaluationInput(
        values=values or {},
        catalog=lambda: catalog,
        history=lambda: history_table(history),
        user=lambda: single_row(*user) if user else single_row(None, None),
        current_item=lambda: items[current].properties if current in items else None,
    )
    decision = evaluate(parse_filter(expression), data, name="f")
    by_mask = set(VOCAB[decision.mask(VOCAB)].tolist())
    assert by_mask == {i for i in VOCAB.tolist() if decision.allows(i)}  # vectorised == one by one
    assert set(decision.excluded_from(VOCAB)) == ALL - by_mask
    if decision.names_all_it_rules_out:  # campaigns then take ``exclude`` as is, with no pass over VOCAB
        assert set(decision.exclude.tolist()) & ALL == ALL - by_mask
    return by_mask


def inc(where: str) -> str:
    return f"INCLUDE ItemID WHERE {where}"


def exc(where: str) -> str:
    return f"EXCLUDE ItemID WHERE {where}"


# --------------------------------------------------------------------------- Items fields
def test_in_matches_any_value_of_a_multi_valued_field_exactly():
    assert allowed(inc('Items.CATEGORY IN ("boots")')) == {"boot1"}
    assert allowed(inc('Items.CATEGORY IN ("sale", "nothing")')) == {"sandal", "knife"}
    assert allowed(inc('Items.COLOR IN ("brown")')) == {"boot1"}  # exact strings: "Brown" differs


def test_not_in_is_the_opposite_of_in_and_items_without_the_field_are_not_in_anything():
    assert allowed(inc('Items.COLOR NOT IN ("black")')) == {"boot1", "sneaker", "sandal", "knife", "ghost"}
    assert allowed(exc('Items.CATEGORY NOT IN ("shoes")')) == {"boot1", "sneaker", "sandal"}


def test_numeric_comparisons_read_numbers_written_as_text_and_skip_items_without_one():
    assert allowed(inc("Items.PRICE < 50")) == {"sandal", "pan", "knife"}
    assert allowed(inc("Items.PRICE >= 80")) == {"boot1", "sneaker"}
    assert allowed(inc("Items.PRICE = 25")) == {"pan"}
    assert allowed(inc("Items.PRICE != 25")) == {"boot1", "sneaker", "sandal", "knife"}
    assert allowed(inc("Items.YEAR <= 1970")) == {"sneaker"}
    assert allowed(inc('Items.COLOR = "black"')) == {"pan"}
    assert allowed(inc('Items.COLOR != "black"')) == ALL - {"pan"}


def test_item_id_creation_timestamp_and_field_names_in_any_case():
    assert allowed(inc("Items.creation_timestamp > 1700050000")) == {"sneaker"}
    assert allowed(inc('items.item_id IN ("pan", "ghost")')) == {"pan"}
    assert allowed(inc('ITEMS.category_l1 IN ("home")')) == {"pan"}  # PutItems' camelCase key


def test_and_binds_tighter_than_or():
    expression = inc('Items.CATEGORY IN ("kitchen") OR Items.CATEGORY IN ("shoes") AND Items.PRICE < 50')
    assert allowed(expression) == {"pan", "knife", "sandal"}


# --------------------------------------------------------------------------- chaining with |
def test_expressions_combine_as_personalize_documents():
    shoes, sale = 'Items.CATEGORY IN ("shoes")', 'Items.CATEGORY IN ("sale")'
    kitchen, cheap = 'Items.CATEGORY IN ("kitchen")', "Items.PRICE < 30"
    assert allowed(f"{inc(shoes)} | {inc(kitchen)}") == ALL - {"ghost"}  # Include A | Include B = A ∪ B
    assert allowed(f"{inc(shoes)} | {exc(sale)}") == {"boot1", "sneaker"}  # Include A | Exclude B = A − B
    assert allowed(f"{exc(sale)} | {exc(cheap)}") == {"boot1", "sneaker", "ghost"}  # Exclude A | B = ¬(A ∪ B)
    both = f"{inc(shoes)} | {inc(kitchen)} | {exc(sale)} | {exc(cheap)}"
    assert allowed(both) == {"boot1", "sneaker"}  # (A ∪ B) − (C ∪ D)
    assert allowed(f"{exc(sale)} | {inc(shoes)}") == allowed(f"{inc(shoes)} | {exc(sale)}")  # order does not matter


# --------------------------------------------------------------------------- $PARAMETERS
def test_parameters_take_values_in_personalize_encoding():
    expression = inc("Items.CATEGORY IN ($CATEGORY)")
    assert allowed(expression, values={"CATEGORY": '"kitchen","boots"'}) == {"pan", "knife", "boot1"}
    assert allowed(expression, values={"CATEGORY": "'kitchen' , 'boots'"}) == {"pan", "knife", "boot1"}
    for price in ("40", '"40"'):
        assert allowed(inc("Items.PRICE <= $PRICE"), values={"PRICE": price}) == {"sandal", "pan", "knife"}


def test_exclude_expressions_without_their_values_are_skipped():
    expression = exc("Items.CATEGORY IN ($CATEGORY)") + " | " + exc('Items.CATEGORY IN ("boots")')
    assert allowed(expression) == ALL - {"boot1"}
    assert allowed(expression, values={"CATEGORY": '"kitchen"'}) == ALL - {"boot1", "pan", "knife"}


def test_include_expressions_need_all_their_values():
    with pytest.raises(InvalidInput, match=r"needs filterValues for \$CATEGORY"):
        allowed(inc("Items.CATEGORY IN ($CATEGORY)"))


@pytest.mark.parametrize(
    ("expression", "values", "message"),
    [
        (inc("Items.CATEGORY IN ($C)"), {"c": '"kitchen"'}, "does not use"),
        (inc("Items.CATEGORY IN ($C)"), {"C": "kitchen"}, r'filterValues\["C"\] at position 1: values must be quoted'),
        (inc("Items.CATEGORY IN ($C)"), {"C": '"a",'}, "a value is missing after the last ','"),
        (inc("Items.CATEGORY IN ($C)"), {"C": '"a" "b"'}, "at position 5: expected ',' between values"),
        (inc("Items.CATEGORY IN ($C)"), {"C": "*"}, r"\* can only be used for Interactions.EVENT_TYPE"),
        (inc("Items.PRICE < $P"), {"P": '"cheap"'}, "compares numbers"),
        (inc("Items.PRICE < $P"), {"P": '"1","2"'}, "needs exactly one value"),
        (inc("Items.PRICE < $P"), {"P": ""}, "no value given"),
    ],
)
def test_bad_values_are_refused_with_the_reason(expression, values, message):
    with pytest.raises(InvalidInput, match=message):
        allowed(expression, values=values)


# --------------------------------------------------------------------------- Interactions
HISTORY = [("boot1", "Purchase"), ("pan", "view"), ("pan", "click"), ("ghost", "click")]


def test_interaction_filters_match_event_types_case_insensitively():
    assert allowed(exc('Interactions.EVENT_TYPE IN ("purchase")'), history=HISTORY) == ALL - {"boot1"}
    assert allowed(inc('Interactions.EVENT_TYPE IN ("CLICK")'), history=HISTORY) == {"pan", "ghost"}
    assert allowed(inc("Interactions.EVENT_TYPE IN (*)"), history=HISTORY) == {"boot1", "pan", "ghost"}
    assert allowed(inc('Interactions.EVENT_TYPE IN ("*")'), history=HISTORY) == {"boot1", "pan", "ghost"}
    # a row-level test: pan was also clicked, so it has an interaction that is not a view
    assert allowed(inc('Interactions.EVENT_TYPE NOT IN ("view")'), history=HISTORY) == {"boot1", "pan", "ghost"}
    expression = exc("Interactions.EVENT_TYPE IN ($EVENTS)")
    assert allowed(expression, history=HISTORY, values={"EVENTS": '"PURCHASE", "view"'}) == ALL - {"boot1", "pan"}
    assert allowed(expression, history=HISTORY, values={"EVENTS": "*"}) == ALL - {"boot1", "pan", "ghost"}


def test_a_shopper_without_history_has_nothing_to_exclude_or_include():
    assert allowed(exc('Interactions.EVENT_TYPE IN ("purchase")')) == ALL
    assert allowed(inc('Interactions.EVENT_TYPE IN ("purchase")')) == set()


def test_items_and_interactions_chain():
    expression = inc('Items.CATEGORY IN ("kitchen")') + " | " + exc('Interactions.EVENT_TYPE IN ("view")')
    assert allowed(expression, history=HISTORY) == {"knife"}


# --------------------------------------------------------------------------- IF and CurrentItem
def test_if_current_user_switches_an_expression_on_or_off():
    expression = exc('Items.CATEGORY IN ("kitchen")') + " IF CurrentUser.AGE > 18"
    assert allowed(expression, user=("adult", {"AGE": 30})) == ALL - {"pan", "knife"}
    assert allowed(expression, user=("adult-as-text", {"AGE": "21"})) == ALL - {"pan", "knife"}
    assert allowed(expression, user=("teen", {"AGE": 12})) == ALL
    assert allowed(expression, user=("no-age", {})) == ALL
    assert allowed(expression) == ALL  # unknown shopper
    with_param = exc('Items.CATEGORY IN ("kitchen")') + " IF CurrentUser.AGE = $AGE AND CurrentUser.TIER IN ('gold')"
    assert allowed(with_param, user=("u", {"AGE": 30, "TIER": "gold"}), values={"AGE": "30"}) == ALL - {"pan", "knife"}
    assert allowed(with_param, user=("u", {"AGE": 30, "TIER": "silver"}), values={"AGE": "30"}) == ALL


def test_current_item_compares_with_the_item_asked_about():
    expression = inc("Items.PRICE < CurrentItem.PRICE AND Items.CATEGORY IN CurrentItem.CATEGORY")
    assert allowed(expression, current="boot1") == {"sneaker", "sandal"}
    assert allowed(inc("Items.COLOR = CurrentItem.COLOR"), current="boot1") == {"boot1"}
    assert allowed(expression, current="ghost") == set()


# --------------------------------------------------------------------------- through the store
def seed(store):
    store.create_dataset_group("shop")
    store.ingest(
        "shop",
        [
            *ITEMS.values(),
            User("adult", {"AGE": 30}),
            User("teen", {"AGE": 12}),
        ],
    )


def test_filters_are_created_listed_and_deleted(store):
    seed(store)
    info = create_filter(store, "shop", "no-purchased", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")')
    assert info.name == "no-purchased" and info.created_at > 0
    create_filter(store, "shop", "kitchen", inc('Items.CATEGORY IN ("kitchen")'))
    assert [f.name for f in list_filters(store, "shop")] == ["kitchen", "no-purchased"]
    with pytest.raises(AlreadyExists):
        create_filter(store, "shop", "kitchen", inc('Items.CATEGORY IN ("kitchen")'))
    with pytest.raises(FilterSyntaxError, match="at position 37: expected IN, NOT IN or a comparison"):
        create_filter(store, "shop", "bad", 'EXCLUDE ItemID WHERE Items.CATEGORY "shoe"')
    with pytest.raises(InvalidInput, match="invalid filter name"):
        create_filter(store, "shop", "-bad", inc('Items.CATEGORY IN ("kitchen")'))
    with pytest.raises(NotFound):
        create_filter(store, "nowhere", "f", inc('Items.CATEGORY IN ("kitchen")'))
    delete_filter(store, "shop", "kitchen")
    assert [f.name for f in list_filters(store, "shop")] == ["no-purchased"]
    with pytest.raises(NotFound):
        delete_filter(store, "shop", "kitchen")
    store.delete_dataset_group("shop")  # filters go with their dataset group
    store.create_dataset_group("shop")
    assert list_filters(store, "shop") == []


def test_fields_are_checked_against_an_imported_schema(store):
    seed(store)
    store.put_schema(
        "shop",
        "ITEMS",
        {
            "type": "record",
            "name": "Items",
            "fields": [
                {"name": "ITEM_ID", "type": "string"},
                {"name": "CATEGORY", "type": "string", "categorical": True},
                {"name": "DESCRIPTION", "type": ["null", "string"], "textual": True},
                {"name": "ON_SALE", "type": "boolean"},
                {"name": "PRICE", "type": "float"},
            ],
        },
    )
    create_filter(store, "shop", "ok", inc("Items.category IN ($C) AND Items.PRICE < CurrentItem.PRICE"))
    for expression, fragment, reason in [
        (inc('Items.COLOUR IN ("red")'), "Items.COLOUR", "the Items schema has no field COLOUR"),
        (inc('Items.DESCRIPTION IN ("boot")'), "Items.DESCRIPTION", "textual fields cannot be filtered"),
        (inc('Items.ON_SALE IN ("true")'), "Items.ON_SALE", "booleans cannot be filtered"),
        (inc("Items.CATEGORY > 3"), "Items.CATEGORY", "compares numbers"),
        (inc("Items.PRICE < CurrentItem.WEIGHT"), "CurrentItem", "no field WEIGHT"),
    ]:
        with pytest.raises(FilterSyntaxError) as caught:
            create_filter(store, "shop", "bad", expression)
        assert reason in caught.value.reason
        assert caught.value.position == expression.index(fragment) + 1


def test_interaction_filters_see_the_whole_history_and_events_sent_a_moment_ago(store):
    seed(store)
    create_filter(store, "shop", "no-purchased", exc('Interactions.EVENT_TYPE IN ("purchase")'))
    t = 1_700_000_000
    events = [Interaction("u1", "boot1", "purchase", t)]  # the oldest of 701 events
    events += [Interaction("u1", ("pan", "knife")[k % 2], "view", t + 1 + k) for k in range(700)]
    store.ingest("shop", events)
    assert "boot1" not in {e.item_id for e in store.latest_events("shop", "u1", 500)}
    service = FilterService(store)
    decision = service.decide("shop", "no-purchased", user_id="u1")
    assert not decision.allows("boot1") and decision.allows("pan")
    store.ingest("shop", [Interaction("u1", "sandal", "Purchase", t + 10_000)])
    decision = service.decide("shop", "no-purchased", user_id="u1")
    assert not decision.allows("sandal") and not decision.allows("boot1")
    assert service.decide("shop", "no-purchased", user_id="someone-else").allows("boot1")


def test_users_current_items_and_new_items_are_read_from_the_store(store):
    seed(store)
    service = FilterService(store, catalog_ttl_s=0)
    create_filter(store, "shop", "adults", exc('Items.CATEGORY IN ("kitchen")') + " IF CurrentUser.AGE > 18")
    create_filter(store, "shop", "cheaper", inc("Items.PRICE < CurrentItem.PRICE"))
    create_filter(store, "shop", "sale", inc("Items.CATEGORY IN ($C)"))
    assert not service.decide("shop", "adults", user_id="adult").allows("pan")
    assert service.decide("shop", "adults", user_id="teen").allows("pan")
    cheaper = service.decide("shop", "cheaper", item_id="sneaker")
    assert [i for i in VOCAB.tolist() if cheaper.allows(i)] == ["knife", "pan", "sandal"]
    assert not service.decide("shop", "sale", {"C": '"sale"'}).allows("new-sale-item")
    store.ingest("shop", [Item("new-sale-item", {"CATEGORY": "sale"})])  # merged in: only new rows are read
    assert service.decide("shop", "sale", {"C": '"sale"'}).allows("new-sale-item")
    store.ingest("shop", [Item("pan", {"CATEGORY": "sale"})])  # replaced
    assert service.decide("shop", "sale", {"C": '"sale"'}).allows("pan")
    store.ingest("shop", [Erasure(item_id="new-sale-item")])  # erased: the catalog is read again
    sale = service.decide("shop", "sale", {"C": '"sale"'})
    assert not sale.allows("new-sale-item") and sale.allows("pan") and sale.allows("knife")
    assert len(service.catalog("shop")) == len(ITEMS)


def test_requests_that_cannot_use_a_filter_are_refused(store):
    seed(store)
    service = FilterService(store)
    create_filter(store, "shop", "segment", "INCLUDE UserID WHERE Users.AGE > 18")
    create_filter(store, "shop", "cheaper", inc("Items.PRICE < CurrentItem.PRICE"))
    with pytest.raises(InvalidInput, match="item recommendations need an ItemID filter"):
        service.decide("shop", "segment", user_id="adult")
    with pytest.raises(InvalidInput, match=r"uses CurrentItem\.PRICE, which needs the request's itemId"):
        service.decide("shop", "cheaper", user_id="adult")
    with pytest.raises(NotFound, match="filter 'nope' does not exist"):
        service.decide("shop", "nope")
    with pytest.raises(InvalidInput, match="without a filter"):
        service.decide("shop", None, {"C": '"x"'})
    with pytest.raises(InvalidInput, match="at most 25 entries"):
        service.decide("shop", "cheaper", {f"K{i}": '"x"' for i in range(26)}, item_id="pan")
    assert not service.decide("shop", None).restricts


def test_filter_arns_name_the_filter():
    assert filter_name_from(arn="arn:aws:personalize:us-east-1:000000000000:filter/no-purchased") == "no-purchased"
    assert filter_name_from("f", "arn:aws:personalize:eu-west-1:1:filter/f") == "f"
    assert filter_name_from() is None
    with pytest.raises(InvalidInput, match="not a filter ARN"):
        filter_name_from(arn="arn:aws:personalize:us-east-1:1:campaign/f")
    with pytest.raises(InvalidInput, match="name different filters"):
        filter_name_from("a", "arn:aws:personalize:us-east-1:1:filter/b")
