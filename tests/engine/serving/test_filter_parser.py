"""The filter expression language: every documented example parses; malformed ones are refused
with the position (1-based) and the reason."""

from __future__ import annotations

import pytest

from engine.errors import InvalidInput
from engine.serving.filters_syntax import (
    BoolOp,
    Condition,
    CurrentItem,
    FilterSyntaxError,
    Literal,
    Param,
    Wildcard,
    parse_filter,
)

# Reference §1.6, verbatim (29 and 34 hold two expressions each).
DOCUMENTED_EXAMPLES = [
    "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENT_TYPE)",
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")',
    'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")',
    "EXCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)",
    'EXCLUDE ItemID WHERE Items.CATEGORY IN ("shoe") AND Items.DESCRIPTION NOT IN ("boot")',
    "INCLUDE ItemID WHERE Items.PRICE <= $PRICE",
    "INCLUDE ItemID WHERE Items.CREATION_TIMESTAMP < $DATE",
    "INCLUDE ItemID WHERE Items.GENRE IN ($GENRE)",
    "EXCLUDE ItemID WHERE Items.GENRE IN ($GENRE) IF CurrentUser.AGE = $AGE",
    'INCLUDE ItemID WHERE Items.CATEGORY IN ("watch") AND Items.DESCRIPTION IN ("luxury") IF CurrentUser.AGE > 18',
    "INCLUDE UserID WHERE Users.MEMBERSHIP_STATUS IN ($MEMBERSHIP)",
    "EXCLUDE UserID WHERE Users.AGE < $AGE",
    'INCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("click, rating")',
    "EXCLUDE UserID WHERE Interactions.EVENT_TYPE IN ($EVENT_TYPE)",
    'INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY) | INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("favorite")',
    "INCLUDE ItemID WHERE Items.GENRE IN ($GENRE) | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN "
    '("click", "stream")',
    'INCLUDE ItemID WHERE Items.OWNER IN ("in-house")',
    'INCLUDE ItemID WHERE Items.CATEGORY IN ("clothing") AND Items.AVAILABLE IN ("True")',
    "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.GENRE IN CurrentItem.GENRE",
    'EXCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("shoe") AND Items.CATEGORY_L2 NOT IN ("boot")',
    "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.CREATION_TIMESTAMP > $DATE",
    'EXCLUDE ItemID WHERE INTERACTIONS.event_type IN ("Purchase")',
    'EXCLUDE ItemID WHERE ITEMS.CATEGORY_L1 NOT IN ("cold dispensed", "hot dispensed", "salty snacks", "food service")',
    'EXCLUDE ItemID WHERE INTERACTIONS.event_type IN ("Purchase") | EXCLUDE ItemID WHERE ITEMS.CATEGORY_L1 IN '
    '("cold dispensed", "hot dispensed", "salty snacks", "food service")',
    "INCLUDE ItemID WHERE ITEMS.CATEGORY_L1 IN CurrentItem.CATEGORY_L1",
    'EXCLUDE ItemID WHERE INTERACTIONS.event_type IN ("Purchase") | INCLUDE ItemID WHERE ITEMS.CATEGORY_L1 IN '
    "CurrentItem.CATEGORY_L1",
    'EXCLUDE ItemID WHERE INTERACTIONS.event_type IN ("Purchase") | INCLUDE ItemID WHERE ITEMS.PROMOTED IN ("Y")',
    "INCLUDE ItemID WHERE Items.YEAR >= 1970 AND Items.YEAR < 1980",
    'INCLUDE ItemID WHERE Interactions.event_type IN ("watch")',
    'EXCLUDE ItemID WHERE Interactions.event_type IN ("watch")',
    "INCLUDE ItemID WHERE Items.CATEGORY_L2 IN ($CATEGORY)",
    "INCLUDE ItemID WHERE Items.ALLOWED_COUNTRIES IN ($CONTEXT_COUNTRY)",
    "INCLUDE ItemID WHERE ITEMS.CATEGORY_L1 IN ($CATEGORIES)",
    "INCLUDE ItemID WHERE Items.CREATION_TIMESTAMP > $TIMESTAMP",
    "INCLUDE ItemID WHERE Items.creation_timestamp > 1633240824",
    "INCLUDE ItemID WHERE Items.published_date > 20211001",
    'exclude UserId where users.country in ("England", "Japan購入")',
    # samples filter_rotator: single quotes
    "INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ('watched','favorited')",
]


@pytest.mark.parametrize("expression", DOCUMENTED_EXAMPLES)
def test_every_documented_example_parses(expression):
    parsed = parse_filter(expression)
    assert parsed.expressions
    assert parsed.text == expression


def test_a_documented_example_reads_as_its_parts():
    parsed = parse_filter("EXCLUDE ItemID WHERE Items.GENRE IN ($GENRE) IF CurrentUser.AGE = $AGE")
    [expr] = parsed.expressions
    assert (expr.action, expr.target, expr.dataset) == ("EXCLUDE", "ItemID", "ITEMS")
    assert expr.params == ("GENRE", "AGE")
    assert isinstance(expr.where, Condition) and expr.where.op == "IN"
    assert expr.where.operand == Param("GENRE", expr.where.operand.pos)
    [cond] = expr.if_conditions
    assert (str(cond.field), cond.op) == ("CurrentUser.AGE", "=")


def test_and_binds_tighter_than_or():
    parsed = parse_filter('INCLUDE ItemID WHERE Items.A IN ("a") OR Items.B IN ("b") AND Items.C > 3')
    where = parsed.expressions[0].where
    assert isinstance(where, BoolOp) and where.op == "OR"
    assert isinstance(where.parts[1], BoolOp) and where.parts[1].op == "AND"


def test_values_numbers_wildcards_and_current_item_are_read():
    parsed = parse_filter(
        "INCLUDE ItemID WHERE Items.PRICE >= -2.5e1 AND Items.COLOR = 'red' AND Items.G IN (CurrentItem.G)"
        ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (*) | INCLUDE ItemID WHERE Items.Y IN ("a\\"b", 1970)'
    )
    first, second, third = parsed.expressions
    price, color, genre = first.conditions()
    assert price.operand == Literal(-25.0, price.operand.pos) and price.operand.is_number
    assert color.operand == Literal("red", color.operand.pos) and not color.operand.is_number
    assert genre.operand == CurrentItem("G", genre.operand.pos)
    assert isinstance(second.where.operand[0], Wildcard)
    assert [v.value for v in third.where.operand] == ['a"b', "1970"]
    assert parsed.uses_current_item and not parsed.uses_current_user
    assert parsed.datasets == {"ITEMS", "INTERACTIONS"}


def at(expression: str, fragment: str) -> int:
    """1-based position of ``fragment`` in ``expression``."""
    return expression.index(fragment) + 1


W = "INCLUDE ItemID WHERE "
MALFORMED = [
    ('EXCLUDE ItemID WHERE Items.CATEGORY "shoe"', '"shoe"', "expected IN, NOT IN or a comparison"),
    ("   ", None, "cannot be empty"),
    ('REMOVE ItemID WHERE Items.X IN ("a")', "REMOVE", "expected INCLUDE or EXCLUDE"),
    ('INCLUDE Items WHERE Items.X IN ("a")', "Items", "expected ItemID, UserID or ActionID"),
    ('INCLUDE ItemID Items.X IN ("a")', "Items.X", "expected WHERE"),
    (W + 'Items.X IN ("a") AND Interactions.EVENT_TYPE IN ("b")', "Interactions", "cannot mix Items and Interactions"),
    (W + "Items.X NOT IN ($P)", "$P", "cannot be used with NOT IN"),
    (W + 'Items.X IN ("a)', '"a)', "never closed"),
    (W + "Items.X IN (shoes)", "shoes", "values must be quoted"),
    (W + "Items.X IN ()", ")", "expected a quoted value"),
    (W + 'Items.X IN ("a") IF CurrentUser.A > 1 OR CurrentUser.B > 2', "OR", "only be extended with AND"),
    (W + 'Interactions.ITEM_ID IN ("x")', "Interactions", "only Interactions.EVENT_TYPE can be filtered"),
    (W + "Items.X IN (*)", "*", "* can only be used with Interactions.EVENT_TYPE"),
    (W + 'Items.PRICE < "5"', '"5"', "< compares numbers"),
    (W + "CurrentUser.AGE > 18", "CurrentUser", "only be tested in an IF"),
    (W + 'Items.X IN ("a") IF Items.Y IN ("b")', "Items.Y", "IF condition can only test CurrentUser"),
    (W + "Users.AGE > 5", "Users", "ItemID filters work on Items or Interactions fields"),
    (W + 'Items.X IN ("a") | INCLUDE UserID WHERE Users.Y IN ("b")', "INCLUDE UserID", "must filter the same thing"),
    (W + 'Items.X IN ("a" "b")', '"b"', "expected ')' to close the list"),
    (W + 'Items.X IN ($A, "b")', ",", "must be the only value"),
    (W + 'Items.X IN ("a") |', None, "expected INCLUDE or EXCLUDE, found the end"),
    (W + "Items.X @ 5", "@", "unexpected character '@'"),
    (W + 'Foo.X IN ("a")', "Foo", "unknown dataset 'Foo'"),
    (W + "Interactions.EVENT_TYPE > 5", ">", "EVENT_TYPE takes IN or NOT IN"),
    (W + 'Items.X NOT ("a")', "(", "expected IN after NOT"),
    (W + 'Items.X IN ("a") IF CurrentUser.A > 1 IF CurrentUser.B > 2', "IF CurrentUser.B", "only one IF"),
    ('INCLUDE UserID WHERE Users.X IN ("a") IF CurrentUser.A > 1', "IF", "apply only to item filters"),
    (W + 'Items.X IN ("a") AND', None, "expected a field"),
    (W + "Items.PRICE < Users.PRICE", "Users.PRICE", "expected a number, a $PARAMETER or CurrentItem.FIELD"),
    (W + "Interactions.EVENT_TYPE IN CurrentItem.X", "CurrentItem", "CurrentItem can only be compared with Items"),
]


@pytest.mark.parametrize(("expression", "fragment", "reason"), MALFORMED)
def test_malformed_expressions_are_refused_with_position_and_reason(expression, fragment, reason):
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(expression)
    err = caught.value
    at_end = 1 if not expression.strip() else len(expression) + 1
    expected = at_end if fragment is None else at(expression, fragment)
    assert reason in err.reason
    assert err.position == expected, err.message
    assert err.message.startswith(f"invalid filter expression at position {expected}: ")
    assert isinstance(err, InvalidInput) and err.details == {"position": expected, "reason": err.reason}
    assert "\n" not in err.message


def test_an_overlong_expression_is_refused():
    expression = W + "Items.X IN (" + ", ".join(f'"v{i}"' for i in range(600)) + ")"
    assert len(expression) > 2500
    with pytest.raises(FilterSyntaxError, match="at most 2500 characters"):
        parse_filter(expression)
