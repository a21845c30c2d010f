"""Personalize filter expressions: tokens, syntax tree and parser.

A filter is parsed once, when it is created, so a bad expression is refused there with the
position and the reason (Personalize's CreateFilter refuses it too; reference §1). Everything the
language forbids and that can be seen without data is checked here: mixing datasets inside one
expression, IF outside the end of an expression, CurrentUser outside IF, placeholders with NOT IN,
``*`` anywhere but Interactions.EVENT_TYPE. Keywords, dataset and field names are
case-insensitive (AWS's own retail demo writes ``INTERACTIONS.event_type``); $PARAMETER names are
case-sensitive, as Personalize documents. Positions in messages are 1-based character offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.errors import InvalidInput

MAX_EXPRESSION_LENGTH = 2500  # botocore: CreateFilter.filterExpression max length

INCLUDE, EXCLUDE = "INCLUDE", "EXCLUDE"
TARGETS = {"ITEMID": "ItemID", "USERID": "UserID", "ACTIONID": "ActionID"}
DATASETS = {"ITEMS": "Items", "INTERACTIONS": "Interactions", "USERS": "Users", "ACTIONS": "Actions"}
#: The datasets each target's conditions may use (reference §1.1-1.2).
TARGET_DATASETS = {
    "ItemID": ("ITEMS", "INTERACTIONS"),
    "UserID": ("USERS", "INTERACTIONS"),
    "ActionID": ("ACTIONS", "INTERACTIONS"),
}
CURRENT_USER, CURRENT_ITEM = "CURRENTUSER", "CURRENTITEM"
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
SET_OPERATORS = ("IN", "NOT IN")
_KEYWORDS = frozenset({"INCLUDE", "EXCLUDE", "WHERE", "AND", "OR", "IN", "NOT", "IF"})

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_.])
  | (?P<param>\$[A-Za-z0-9_]+)
  | (?P<word>{_NAME}(?:\.[A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|=|<|>|\(|\)|,|\||\*)
  | (?P<quote>["'])
    """,
    re.VERBOSE,
)


class FilterSyntaxError(InvalidInput):
    """A filter expression (or a filterValues entry) that cannot be read, with where and why."""

    def __init__(self, reason: str, position: int, *, subject: str = "invalid filter expression") -> None:
        super().__init__(
            f"{subject} at position {position}: {reason}", details={"position": position, "reason": reason}
        )
        self.reason = reason
        self.position = position


# --------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class Token:
    kind: str  # word | number | param | string | op | end
    text: str  # as written (strings: the decoded contents)
    pos: int  # 0-based offset in the expression

    @property
    def upper(self) -> str:
        return self.text.upper()

    def shown(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        if self.kind == "string":
            return f'"{self.text}"'
        return repr(self.text)


def tokenize(text: str, *, subject: str = "invalid filter expression") -> list[Token]:
    """Split ``text`` into tokens; strings take double or single quotes and backslash escapes."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterSyntaxError(f"unexpected character {text[pos]!r}", pos + 1, subject=subject)
        kind = m.lastgroup
        if kind == "quote":
            value, end = _read_string(text, pos, subject)
            tokens.append(Token("string", value, pos))
            pos = end
            continue
        if kind != "space":
            tokens.append(Token(kind or "op", m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _read_string(text: str, start: int, subject: str) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterSyntaxError(f"this {quote} string is never closed", start + 1, subject=subject)


# --------------------------------------------------------------------------- syntax tree
@dataclass(frozen=True)
class Field:
    """``Items.GENRE``: a dataset (ITEMS, INTERACTIONS, USERS, ACTIONS or CURRENTUSER) and a field."""

    dataset: str
    name: str  # upper-case
    pos: int

    def __str__(self) -> str:
        head = "CurrentUser" if self.dataset == CURRENT_USER else DATASETS[self.dataset]
        return f"{head}.{self.name}"


@dataclass(frozen=True)
class Literal:
    value: str | float
    pos: int

    @property
    def is_number(self) -> bool:
        return isinstance(self.value, float)


@dataclass(frozen=True)
class Wildcard:
    """``*``: every event type (Interactions.EVENT_TYPE only)."""

    pos: int


@dataclass(frozen=True)
class Param:
    name: str  # without the $, case-sensitive
    pos: int


@dataclass(frozen=True)
class CurrentItem:
    """``CurrentItem.GENRE``: the named field of the item the request asks related items for."""

    name: str
    pos: int


Operand = tuple[Literal | Wildcard, ...] | Param | CurrentItem | Literal


@dataclass(frozen=True)
class Condition:
    field: Field
    op: str  # IN, NOT IN or a comparison
    operand: Operand
    pos: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR
    parts: tuple[Node, ...]


Node = Condition | BoolOp


@dataclass(frozen=True)
class Expression:
    """One ``INCLUDE|EXCLUDE target WHERE ... [IF ...]`` between ``|`` separators."""

    action: str
    target: str  # ItemID | UserID | ActionID
    where: Node
    if_conditions: tuple[Condition, ...]
    pos: int

    @property
    def dataset(self) -> str:
        return next(self.conditions()).field.dataset

    def conditions(self) -> Iterator[Condition]:
        """The WHERE conditions, left to right."""
        stack: list[Node] = [self.where]
        out: list[Condition] = []
        while stack:
            node = stack.pop()
            if isinstance(node, Condition):
                out.append(node)
            else:
                stack.extend(reversed(node.parts))
        return iter(out)

    @property
    def params(self) -> tuple[str, ...]:
        """Every $PARAMETER the expression uses, WHERE and IF, in order of appearance."""
        names = [c.operand.name for c in (*self.conditions(), *self.if_conditions) if isinstance(c.operand, Param)]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class FilterExpression:
    text: str
    expressions: tuple[Expression, ...]
    target: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", self.expressions[0].target)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for e in self.expressions for p in e.params))

    @property
    def datasets(self) -> frozenset[str]:
        return frozenset(e.dataset for e in self.expressions)

    @property
    def uses_current_item(self) -> bool:
        return any(isinstance(c.operand, CurrentItem) for e in self.expressions for c in e.conditions())

    @property
    def uses_current_user(self) -> bool:
        return any(e.if_conditions for e in self.expressions)


# --------------------------------------------------------------------------- parser
def parse_filter(text: str) -> FilterExpression:
    """Parse a whole filter (expressions chained with ``|``); raises FilterSyntaxError."""
    if not isinstance(text, str) or not text.strip():
        raise FilterSyntaxError("a filter expression cannot be empty", 1)
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise FilterSyntaxError(
            f"a filter expression is at most {MAX_EXPRESSION_LENGTH} characters (this one has {len(text)})",
            MAX_EXPRESSION_LENGTH + 1,
        )
    return _Parser(tokenize(text)).parse(text)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    # ----------------------------------------------------------------- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.upper in words

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def fail(self, reason: str, tok: Token | None = None) -> FilterSyntaxError:
        tok = tok or self.tok
        return FilterSyntaxError(reason, tok.pos + 1)

    def expect_op(self, op: str, context: str) -> Token:
        if not self.is_op(op):
            raise self.fail(f"expected '{op}' {context}, found {self.tok.shown()}")
        return self.advance()

    # ----------------------------------------------------------------- grammar
    def parse(self, text: str) -> FilterExpression:
        expressions = [self.expression()]
        while self.is_op("|"):
            self.advance()
            expressions.append(self.expression())
        if self.tok.kind != "end":
            if self.is_word("IF"):
                raise self.fail("an expression can have only one IF, at its end")
            if self.is_word("OR") and expressions[-1].if_conditions:
                raise self.fail("an IF condition can only be extended with AND")
            raise self.fail(f"expected AND, OR, IF, '|' or the end of the expression, found {self.tok.shown()}")
        first = expressions[0]
        for e in expressions[1:]:
            if e.target != first.target:
                raise FilterSyntaxError(
                    f"all expressions of a filter must filter the same thing: {first.target}, not {e.target}",
                    e.pos + 1,
                )
        return FilterExpression(text, tuple(expressions))

    def expression(self) -> Expression:
        start = self.tok
        if not self.is_word(INCLUDE, EXCLUDE):
            raise self.fail(f"expected INCLUDE or EXCLUDE, found {self.tok.shown()}")
        action = self.advance().upper
        if not (self.tok.kind == "word" and self.tok.upper in TARGETS):
            raise self.fail(f"expected ItemID, UserID or ActionID after {action}, found {self.tok.shown()}")
        target = TARGETS[self.advance().upper]
        if not self.is_word("WHERE"):
            raise self.fail(f"expected WHERE after {action} {target}, found {self.tok.shown()}")
        self.advance()
        where = self.disjunction()
        if_conditions: tuple[Condition, ...] = ()
        if self.is_word("IF"):
            if_tok = self.advance()
            if target != "ItemID":
                raise self.fail("IF CurrentUser conditions apply only to item filters (ItemID)", if_tok)
            conds = [self.condition(in_if=True)]
            while self.is_word("AND"):
                self.advance()
                conds.append(self.condition(in_if=True))
            if_conditions = tuple(conds)
        expr = Expression(action, target, where, if_conditions, start.pos)
        self.check_datasets(expr)
        return expr

    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.is_word("OR"):
            self.advance()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else BoolOp("OR", tuple(parts))

    def conjunction(self) -> Node:
        parts: list[Node] = [self.condition(in_if=False)]
        while self.is_word("AND"):
            self.advance()
            parts.append(self.condition(in_if=False))
        return parts[0] if len(parts) == 1 else BoolOp("AND", tuple(parts))

    def field(self, *, in_if: bool) -> Field:
        tok = self.tok
        example = "such as CurrentUser.AGE" if in_if else "such as Items.GENRE or Interactions.EVENT_TYPE"
        if tok.kind != "word" or tok.upper in _KEYWORDS:
            raise self.fail(f"expected a field {example}, found {tok.shown()}")
        head, _, name = tok.text.partition(".")
        head_u = head.upper()
        if not name or "." in name or not re.fullmatch(_NAME, name):
            raise self.fail(f"expected a field {example} (dataset.FIELD), found {tok.shown()}")
        if in_if:
            if head_u != CURRENT_USER:
                raise self.fail(
                    f"an IF condition can only test CurrentUser fields, e.g. IF CurrentUser.AGE > 18, not {tok.text}"
                )
            self.advance()
            return Field(CURRENT_USER, name.upper(), tok.pos)
        if head_u == CURRENT_USER:
            raise self.fail("CurrentUser can only be tested in an IF condition at the end of an expression")
        if head_u == CURRENT_ITEM:
            raise self.fail(f"CurrentItem goes on the right-hand side, e.g. Items.{name} IN CurrentItem.{name}")
        if head_u not in DATASETS:
            raise self.fail(f"unknown dataset {head!r}: use Items, Interactions, Users or Actions")
        self.advance()
        return Field(head_u, name.upper(), tok.pos)

    def condition(self, *, in_if: bool) -> Condition:
        fld = self.field(in_if=in_if)
        op_tok = self.tok
        if self.is_word("NOT"):
            self.advance()
            if not self.is_word("IN"):
                raise self.fail(f"expected IN after NOT, found {self.tok.shown()}")
            self.advance()
            op = "NOT IN"
        elif self.is_word("IN"):
            self.advance()
            op = "IN"
        elif self.tok.kind == "op" and self.tok.text in COMPARISONS:
            op = self.advance().text
        else:
            raise self.fail(
                f"expected IN, NOT IN or a comparison (=, !=, <, <=, >, >=) after {fld}, found {self.tok.shown()}"
            )
        operand = self.set_operand(op, in_if) if op in SET_OPERATORS else self.comparison_operand(op, in_if)
        cond = Condition(fld, op, operand, op_tok.pos)
        self.check_condition(cond)
        return cond

    def current_item(self, in_if: bool) -> CurrentItem | None:
        tok = self.tok
        if tok.kind != "word" or tok.text.partition(".")[0].upper() != CURRENT_ITEM:
            return None
        name = tok.text.partition(".")[2]
        if in_if:
            raise self.fail("an IF condition compares CurrentUser with values, not with CurrentItem")
        if not name or not re.fullmatch(_NAME, name):
            raise self.fail(f"expected CurrentItem.FIELD, found {tok.shown()}")
        self.advance()
        return CurrentItem(name.upper(), tok.pos)

    def set_operand(self, op: str, in_if: bool) -> Operand:
        if (ref := self.current_item(in_if)) is not None:
            return ref
        self.expect_op("(", f"after {op}")
        if (ref := self.current_item(in_if)) is not None:
            self.expect_op(")", "after the CurrentItem field")
            return ref
        if self.tok.kind == "param":
            param = Param(self.advance().text[1:], self.tokens[self.i - 1].pos)
            if op == "NOT IN":
                raise FilterSyntaxError(
                    "a $PARAMETER cannot be used with NOT IN; use IN with the opposite action (INCLUDE / EXCLUDE)",
                    param.pos + 1,
                )
            if self.is_op(","):
                raise self.fail("a $PARAMETER must be the only value in its list")
            self.expect_op(")", "after the parameter")
            return param
        values: list[Literal | Wildcard] = [self.list_value()]
        while self.is_op(","):
            self.advance()
            values.append(self.list_value())
        self.expect_op(")", "to close the list of values")
        return tuple(values)

    def list_value(self) -> Literal | Wildcard:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Literal(tok.text, tok.pos)
        if tok.kind == "number":
            self.advance()
            return Literal(tok.text, tok.pos)  # IN matches exact strings, so a number is kept as written
        if self.is_op("*"):
            self.advance()
            return Wildcard(tok.pos)
        if tok.kind == "param":
            raise self.fail("a $PARAMETER must be the only value in its list")
        if tok.kind == "word" and tok.upper not in _KEYWORDS:
            raise self.fail(f'values must be quoted, e.g. ("{tok.text}")')
        raise self.fail(f'expected a quoted value such as "shoes", found {tok.shown()}')

    def comparison_operand(self, op: str, in_if: bool) -> Operand:
        tok = self.tok
        if (ref := self.current_item(in_if)) is not None:
            return ref
        if tok.kind == "number":
            self.advance()
            return Literal(float(tok.text), tok.pos)
        if tok.kind == "param":
            self.advance()
            return Param(tok.text[1:], tok.pos)
        if tok.kind == "string" and op in ("=", "!="):
            self.advance()
            return Literal(tok.text, tok.pos)
        if tok.kind == "string":
            raise self.fail(f"{op} compares numbers; use IN (...) to match text")
        raise self.fail(f"expected a number, a $PARAMETER or CurrentItem.FIELD after {op}, found {tok.shown()}")

    # ----------------------------------------------------------------- rules
    def check_condition(self, cond: Condition) -> None:
        fld = cond.field
        operand = cond.operand
        wildcards = [v for v in operand if isinstance(v, Wildcard)] if isinstance(operand, tuple) else []
        is_event_type = fld.dataset == "INTERACTIONS" and fld.name == "EVENT_TYPE"
        if fld.dataset == "INTERACTIONS" and fld.name != "EVENT_TYPE":
            raise FilterSyntaxError(f"only Interactions.EVENT_TYPE can be filtered, not {fld}", fld.pos + 1)
        if is_event_type and cond.op not in SET_OPERATORS:
            raise FilterSyntaxError("Interactions.EVENT_TYPE takes IN or NOT IN", cond.pos + 1)
        if wildcards and not is_event_type:
            raise FilterSyntaxError("* can only be used with Interactions.EVENT_TYPE", wildcards[0].pos + 1)
        if isinstance(operand, CurrentItem) and fld.dataset != "ITEMS":
            raise FilterSyntaxError(f"CurrentItem can only be compared with Items fields, not {fld}", operand.pos + 1)

    @staticmethod
    def check_datasets(expr: Expression) -> None:
        allowed = TARGET_DATASETS[expr.target]
        first = next(expr.conditions()).field.dataset
        for cond in expr.conditions():
            ds = cond.field.dataset
            if ds not in allowed:
                names = " or ".join(DATASETS[d] for d in allowed)
                hint = f" (test the shopper with IF CurrentUser.{cond.field.name})" if ds == "USERS" else ""
                raise FilterSyntaxError(
                    f"{expr.target} filters work on {names} fields, not {cond.field}{hint}", cond.field.pos + 1
                )
            if ds != first:
                raise FilterSyntaxError(
                    f"one expression cannot mix {DATASETS[first]} and {DATASETS[ds]} fields; "
                    f"chain two expressions with | instead",
                    cond.field.pos + 1,
                )
