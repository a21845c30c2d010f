"""Bulk import of Amazon Personalize's CSV layout (one dataset type per file) into the engine.

A store that already exports data for Personalize can import the very same files here, so the
rules follow Personalize's documented bulk format rather than inventing a friendlier one:

* the first row is a header whose columns match the schema's fields, in the schema's order;
* an empty cell is a null, allowed only for a field whose type is a union with ``"null"``;
* ``TIMESTAMP`` and ``CREATION_TIMESTAMP`` are Unix epoch **seconds**;
* multi-valued categorical fields and ``IMPRESSION`` separate values with ``|``;
* text is wrapped in double quotes; a quote inside it is escaped with ``\\`` (Personalize's
  documented style) or doubled (RFC 4180, what spreadsheets write). Both are accepted, so a
  literal backslash in the data must be written ``\\\\``.

Field names are matched case-insensitively and records carry them upper-cased (the engine's
convention for ``Item.properties``), so a lower-case header still lines up with the schema.

Validation collects every row problem with its file line number instead of stopping at the
first one, and :func:`import_file` ingests nothing when any row is bad: a half-imported catalog
is harder to repair than a rejected file, and the caller gets the full list to fix in one go.
Problems that make the whole file unreadable (missing file, not UTF-8, no header, a header that
does not match the schema, an invalid schema) raise :class:`~engine.errors.InvalidInput`.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidInput
from engine.records import MAX_ID_LENGTH, Interaction, Item, User

if TYPE_CHECKING:
    from engine.storage.store import Store

__all__ = [
    "DEFAULT_EVENT_TYPE",
    "ImportErrorLine",
    "ImportReport",
    "ImportResult",
    "default_schema",
    "format_error",
    "import_file",
    "load_schema",
    "read_csv",
    "validate_schema",
]

#: Event type given to interactions when the file has no EVENT_TYPE column (or leaves a nullable
#: one empty). Personalize allows such files and then trains on every row with equal weight.
DEFAULT_EVENT_TYPE = "interaction"

#: Personalize's suggested minimum amount of data before training is worthwhile. Falling short
#: is a warning, not an error: a store often imports its catalog before it has enough events.
MIN_USERS = 50
MIN_ITEMS = 50
MIN_INTERACTIONS = 1500

#: Personalize's limits (reference §2.3): schema JSON size, categorical/impression value length.
MAX_SCHEMA_CHARS = 20_000
MAX_CATEGORICAL_LENGTH = 1000
#: A TIMESTAMP above this is almost surely milliseconds (10^11 seconds is the year 5138).
MAX_EPOCH_SECONDS = 10**11

NAMESPACE = "com.amazonaws.personalize.schema"

_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    # dataset type -> (Avro record name, required fields)
    "interactions": ("Interactions", ("USER_ID", "ITEM_ID", "TIMESTAMP")),
    "items": ("Items", ("ITEM_ID",)),
    "users": ("Users", ("USER_ID",)),
}

_PRIMITIVES = frozenset({"string", "int", "long", "float", "double", "boolean"})
_COMPLEX = frozenset({"record", "array", "map", "enum", "fixed", "bytes"})
_INTEGERS = frozenset({"int", "long"})
_NUMBERS = frozenset({"int", "long", "float", "double"})
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_FLOAT_RE = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")

# Types given to Personalize's reserved and well-known fields by default_schema (reference §2.2,
# §2.6). Reserved plain strings (EVENT_TYPE, IMPRESSION, ...) must not be categorical.
_RESERVED_TYPES: dict[str, dict[str, dict[str, Any]]] = {
    "interactions": {
        "USER_ID": {"type": "string"},
        "ITEM_ID": {"type": "string"},
        "TIMESTAMP": {"type": "long"},
        "EVENT_TYPE": {"type": "string"},
        "EVENT_VALUE": {"type": ["float", "null"]},
        "IMPRESSION": {"type": ["string", "null"]},
        "RECOMMENDATION_ID": {"type": ["string", "null"]},
        "EVENT_ATTRIBUTION_SOURCE": {"type": ["string", "null"]},
    },
    "items": {
        "ITEM_ID": {"type": "string"},
        "CREATION_TIMESTAMP": {"type": "long"},
        "PRICE": {"type": "float"},
        "DURATION": {"type": ["float", "null"]},
        "AVERAGE_RATING": {"type": ["float", "null"]},
    },
    "users": {
        "USER_ID": {"type": "string"},
    },
}

# Base types a reserved field may have when the user supplies the schema. Checked so that a typo
# such as TIMESTAMP: string fails at schema time instead of on every row.
_RESERVED_BASES: dict[str, dict[str, frozenset[str]]] = {
    "interactions": {
        "USER_ID": frozenset({"string"}),
        "ITEM_ID": frozenset({"string"}),
        "TIMESTAMP": _INTEGERS,
        "EVENT_TYPE": frozenset({"string"}),
        "EVENT_VALUE": _NUMBERS,
        "IMPRESSION": frozenset({"string"}),
        "RECOMMENDATION_ID": frozenset({"string"}),
        "EVENT_ATTRIBUTION_SOURCE": frozenset({"string"}),
    },
    # CREATION_TIMESTAMP is `long` in most of the docs and `float` in one place (reference §2.6).
    "items": {"ITEM_ID": frozenset({"string"}), "CREATION_TIMESTAMP": _NUMBERS},
    "users": {"USER_ID": frozenset({"string"})},
}

# Interactions columns that map onto Interaction attributes; every other column is contextual
# metadata and goes to Interaction.context. EVENT_ATTRIBUTION_SOURCE has no attribute of its own,
# so it is kept in the context rather than dropped. SESSION_ID and EVENT_ID are not Personalize
# fields, but exports from stores carry them, and "bought in the same session" needs the former.
_INTERACTION_FIELDS = frozenset(
    {
        "USER_ID",
        "ITEM_ID",
        "TIMESTAMP",
        "EVENT_TYPE",
        "EVENT_VALUE",
        "IMPRESSION",
        "RECOMMENDATION_ID",
        "SESSION_ID",
        "EVENT_ID",
    }
)
_ID_FIELDS = frozenset({"USER_ID", "ITEM_ID"})
_TIMESTAMP_FIELDS = frozenset({"TIMESTAMP", "CREATION_TIMESTAMP"})


# --------------------------------------------------------------------------- result types
@dataclass(frozen=True, slots=True)
class ImportErrorLine:
    """One bad row: its 1-based file line (the header is line 1), the column if known, why."""

    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        return format_error(self)

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


def format_error(e: ImportErrorLine) -> str:
    """One line per error, e.g. ``line 17, column TIMESTAMP: not an integer: '12a'``."""
    where = f"line {e.line}" if e.column is None else f"line {e.line}, column {e.column}"
    return f"{where}: {e.reason}"


@dataclass
class ImportResult:
    """What :func:`read_csv` made of a file. ``records`` holds the rows that parsed cleanly."""

    records: list[Interaction | Item | User]
    errors: list[ImportErrorLine]
    rows: int
    warnings: list[str]
    schema: dict[str, Any]
    #: Every error found; ``errors`` may hold fewer when read_csv was given ``max_errors``.
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0


@dataclass
class ImportReport:
    """The outcome of :func:`import_file`; ``ok`` is False when rows were rejected (nothing stored)."""

    dataset_group: str
    dataset_type: str
    path: str
    ok: bool
    rows: int
    imported: dict[str, int]
    errors: list[ImportErrorLine] = field(default_factory=list)
    error_count: int = 0
    warnings: list[str] = field(default_factory=list)
    #: Where the schema came from: "file", "stored" (the group's) or "default" (built from the header).
    schema_source: str = "default"
    schema: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the schema itself is left out; it can be long)."""
        return {
            "ok": self.ok,
            "dataset_group": self.dataset_group,
            "dataset_type": self.dataset_type,
            "path": self.path,
            "rows": self.rows,
            "imported": dict(self.imported),
            "error_count": self.error_count,
            "errors": [e.to_dict() for e in self.errors],
            "errors_truncated": self.error_count > len(self.errors),
            "warnings": list(self.warnings),
            "schema_source": self.schema_source,
        }


# --------------------------------------------------------------------------- schemas
@dataclass(frozen=True, slots=True)
class _Field:
    key: str  # upper-case name: the column/property key used everywhere in the engine
    base: str  # the non-null Avro type
    nullable: bool
    categorical: bool
    textual: bool


def _kind(dataset_type: str) -> str:
    kind = str(dataset_type).lower()
    if kind not in _KINDS:
        raise InvalidInput(f"invalid dataset type {dataset_type!r}: use interactions, items or users")
    return kind


def default_schema(dataset_type: str, header: list[str]) -> dict[str, Any]:
    """Build the schema Personalize would need for ``header`` when the user supplies none.

    Fields follow the header order (Personalize requires CSV and schema orders to match) with
    upper-cased names. Reserved and well-known fields get their documented types. Every other
    column is a nullable *categorical* string, except that in an Items file a column whose name
    ends in ``DESCRIPTION`` is *textual*. Numbers are deliberately not sniffed: guessing from a
    sample misfires (zip codes, ids with leading zeros), and a categorical string is always a
    safe reading. Supply a schema file to get numeric metadata.
    """
    kind = _kind(dataset_type)
    reserved = _RESERVED_TYPES[kind]
    fields: list[dict[str, Any]] = []
    for raw in header:
        name = raw.strip().upper()
        if not name:
            raise InvalidInput("the header has an empty column name")
        if name in reserved:
            spec: dict[str, Any] = {"name": name, **copy.deepcopy(reserved[name])}
        elif kind == "items" and name.endswith("DESCRIPTION"):
            spec = {"name": name, "type": ["string", "null"], "textual": True}
        else:
            spec = {"name": name, "type": ["string", "null"], "categorical": True}
        fields.append(spec)
    return {
        "type": "record",
        "name": _KINDS[kind][0],
        "namespace": NAMESPACE,
        "fields": fields,
        "version": "1.0",
    }


def load_schema(path: str | Path) -> dict[str, Any]:
    """Read a Personalize schema JSON file (the text given to CreateSchema).

    Only parsing happens here; :func:`validate_schema` checks it against a dataset type.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InvalidInput(f"schema file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"schema file {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read schema file {path}: {exc.strerror or exc}") from exc
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"schema file {path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(schema, dict):
        raise InvalidInput(f"schema file {path} must hold a JSON object (an Avro record)")
    return schema


def validate_schema(schema: dict[str, Any], dataset_type: str) -> None:
    """Reject a schema Personalize would reject, before any row is read.

    Checked: an Avro ``record`` named after the dataset type; a flat list of uniquely named
    fields of known primitive types (unions only with ``null``); the dataset type's required
    fields, non-nullable, and reserved fields with their documented types; ``categorical`` and
    ``textual`` only on strings, ``textual`` only in Items; at most 20,000 characters of JSON.
    """
    _parse_schema(schema, _kind(dataset_type))


def _parse_schema(schema: Any, kind: str) -> list[_Field]:
    record_name, required = _KINDS[kind]
    if not isinstance(schema, dict):
        raise InvalidInput("the schema must be a JSON object (an Avro record)")
    if schema.get("type") != "record":
        raise InvalidInput(f"the schema's type must be 'record', not {schema.get('type')!r}")
    name = schema.get("name")
    if not isinstance(name, str) or name.lower() != record_name.lower():
        raise InvalidInput(f"the schema's name must be {record_name!r} for a {kind} dataset, not {name!r}")
    if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        raise InvalidInput(f"the schema is longer than {MAX_SCHEMA_CHARS} characters")
    raw_fields = schema.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise InvalidInput("the schema needs a non-empty 'fields' list")

    parsed: list[_Field] = []
    seen: dict[str, str] = {}  # normalised name -> name as written
    for spec in raw_fields:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidInput(f"every schema field needs a 'name' string: {spec!r}")
        fname = spec["name"]
        if not _NAME_RE.match(fname):
            raise InvalidInput(f"invalid field name {fname!r}: use letters, digits and '_'")
        # Personalize treats GENRES_FIELD_1 and GENRESFIELD1 as the same name; case clashes too
        # because the engine keys properties by upper-case name.
        norm = fname.upper().replace("_", "")
        if norm in seen:
            raise InvalidInput(f"duplicate field names {seen[norm]!r} and {fname!r} in the schema")
        seen[norm] = fname
        base, nullable = _parse_type(fname, spec.get("type"))
        categorical = bool(spec.get("categorical", False))
        textual = bool(spec.get("textual", False))
        if (categorical or textual) and base != "string":
            raise InvalidInput(f"field {fname!r}: only string fields can be categorical or textual")
        if textual and kind != "items":
            raise InvalidInput(f"field {fname!r}: textual fields are allowed only in an Items schema")
        if categorical and textual:
            raise InvalidInput(f"field {fname!r} cannot be both categorical and textual")
        parsed.append(_Field(fname.upper(), base, nullable, categorical, textual))

    by_key = {f.key: f for f in parsed}
    missing = [r for r in required if r not in by_key]
    if missing:
        raise InvalidInput(f"the {record_name} schema is missing required field(s): {', '.join(missing)}")
    for key, allowed in _RESERVED_BASES[kind].items():
        f = by_key.get(key)
        if f is None:
            continue
        if f.base not in allowed:
            raise InvalidInput(f"field {key} must be of type {' or '.join(sorted(allowed))}, not {f.base!r}")
        if key in required and f.nullable:
            raise InvalidInput(f"required field {key} cannot be nullable")
    return parsed


def _parse_type(fname: str, ftype: Any) -> tuple[str, bool]:
    """(base type, nullable) of a field's Avro type; only flat primitives and ``[T, "null"]``."""
    options = ftype if isinstance(ftype, list) else [ftype]
    if not options:
        raise InvalidInput(f"field {fname!r} has an empty type union")
    bases: list[str] = []
    nullable = False
    for option in options:
        if isinstance(option, dict | list):
            raise InvalidInput(f"field {fname!r}: nested types are not supported (the schema must be flat)")
        if option == "null":
            nullable = True
        elif option in _PRIMITIVES:
            bases.append(option)
        elif option in _COMPLEX:
            raise InvalidInput(f"field {fname!r}: type {option!r} is not supported (the schema must be flat)")
        else:
            raise InvalidInput(f"field {fname!r} has an unknown type {option!r}")
    if len(bases) != 1:
        raise InvalidInput(f"field {fname!r} must have exactly one non-null type, found {ftype!r}")
    return bases[0], nullable


def _schema_warnings(fields: list[_Field], kind: str) -> list[str]:
    """Things Personalize accepts but would not use, so the user hears about them at import."""
    warnings: list[str] = []
    reserved = _RESERVED_BASES[kind]
    for f in fields:
        if f.base == "string" and not (f.categorical or f.textual) and f.key not in reserved:
            warnings.append(
                f"field {f.key} is a string that is neither categorical nor textual; "
                "Personalize does not use such fields in training"
            )
    if kind in ("items", "users") and len(fields) < 2:
        warnings.append(f"Personalize requires at least one metadata field besides the id in a {kind} dataset")
    return warnings


# --------------------------------------------------------------------------- cell conversion
class _CellError(ValueError):
    """A cell's value does not fit its field; the message is the user-facing reason."""


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _converter(f: _Field) -> Callable[[str], Any]:
    """A function from a non-empty cell to its typed value, raising _CellError with the reason."""
    if f.base in _INTEGERS:
        is_timestamp = f.key in _TIMESTAMP_FIELDS

        def to_int(cell: str) -> int:
            text = cell.strip()
            if not _INT_RE.match(text):
                raise _CellError(f"not an integer: {_show(cell)}")
            value = int(text)
            if is_timestamp:
                _check_epoch_seconds(value, cell)
            return value

        return to_int
    if f.base in ("float", "double"):
        is_timestamp = f.key in _TIMESTAMP_FIELDS

        def to_float(cell: str) -> float:
            text = cell.strip()
            if not _FLOAT_RE.match(text):
                raise _CellError(f"not a number: {_show(cell)}")
            value = float(text)
            if not math.isfinite(value):
                raise _CellError(f"number out of range: {_show(cell)}")
            if is_timestamp:
                _check_epoch_seconds(value, cell)
            return value

        return to_float
    if f.base == "boolean":

        def to_bool(cell: str) -> bool:
            if cell == "true":
                return True
            if cell == "false":
                return False
            raise _CellError(f"not a boolean (use lower-case true or false): {_show(cell)}")

        return to_bool

    # string
    if f.key in _ID_FIELDS:

        def to_id(cell: str) -> str:
            if len(cell) > MAX_ID_LENGTH:
                raise _CellError(f"longer than {MAX_ID_LENGTH} characters ({len(cell)}): {_show(cell)}")
            return cell

        return to_id
    if f.categorical or f.key == "IMPRESSION":

        def to_categorical(cell: str) -> str:
            if len(cell) > MAX_CATEGORICAL_LENGTH:
                raise _CellError(
                    f"longer than {MAX_CATEGORICAL_LENGTH} characters ({len(cell)}), "
                    f"Personalize's limit for categorical values"
                )
            return cell

        return to_categorical
    return str


def _check_epoch_seconds(value: float, cell: str) -> None:
    if value > MAX_EPOCH_SECONDS:
        raise _CellError(f"looks like milliseconds, timestamps must be Unix epoch seconds: {_show(cell)}")
    if value < 0:
        raise _CellError(f"negative timestamp, timestamps must be Unix epoch seconds: {_show(cell)}")


# --------------------------------------------------------------------------- reading
def _check_header(header: list[str], fields: list[_Field]) -> None:
    found = [h.strip().upper() for h in header]
    expected = [f.key for f in fields]
    if found == expected:
        return
    repeated = sorted({h for h in found if found.count(h) > 1})
    details = {"expected": expected, "found": found}
    if repeated:
        raise InvalidInput(f"the header repeats column(s): {', '.join(repeated)}", details=details)
    if sorted(found) == sorted(expected):
        raise InvalidInput(
            f"the CSV columns must be in the schema's field order: expected {','.join(expected)}, "
            f"found {','.join(found)}",
            details=details,
        )
    missing = [k for k in expected if k not in found]
    unknown = [h for h in found if h not in expected]
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        parts.append(f"column(s) not in the schema: {', '.join(unknown)}")
    raise InvalidInput(f"the header does not match the schema: {'; '.join(parts)}", details=details)


def _rows(reader: Any) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(first file line of the row, cells or None, CSV syntax error or None); skips blank lines.

    The start line is taken before the read so that a quoted value spanning several lines is
    reported where it begins; strict parsing recovers on the next line after a syntax error.
    """
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, None, f"malformed CSV: {exc}"
            continue
        if row:
            yield start, row, None


def read_csv(
    path: str | Path,
    dataset_type: str,
    schema: dict[str, Any] | None = None,
    *,
    max_errors: int | None = None,
) -> ImportResult:
    """Parse and validate one bulk CSV file into engine records, collecting every row error.

    The file is streamed once; only the resulting records are held. ``schema=None`` builds one
    from the header with :func:`default_schema`. ``max_errors`` caps how many errors are kept
    (all are counted in ``error_count``) so a file of millions of bad rows stays cheap.
    """
    kind = _kind(dataset_type)
    path = Path(path)
    warnings: list[str] = []
    errors: list[ImportErrorLine] = []
    error_count = 0
    records: list[Interaction | Item | User] = []
    rows = 0

    def add_error(line: int, column: str | None, reason: str) -> None:
        nonlocal error_count
        error_count += 1
        if max_errors is None or len(errors) < max_errors:
            errors.append(ImportErrorLine(line, column, reason))

    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise InvalidInput(f"file not found: {path}") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc

    with handle:
        reader = csv.reader(handle, escapechar="\\", doublequote=True, strict=True)
        rows_iter = _rows(reader)
        try:
            first = next(rows_iter, None)
            if first is None:
                raise InvalidInput(f"{path} is empty: a header row is required")
            _, header, syntax_error = first
            if header is None:
                raise InvalidInput(f"{path} has an unreadable header row ({syntax_error})")
            if schema is None:
                schema = default_schema(kind, header)
                warnings.append(
                    "no schema given: used a default one built from the header "
                    "(non-reserved columns as categorical strings)"
                )
            fields = _parse_schema(schema, kind)
            _check_header(header, fields)
            warnings.extend(_schema_warnings(fields, kind))

            keys = [f.key for f in fields]
            converters = [_converter(f) for f in fields]
            nullable = [f.nullable for f in fields]
            build = _BUILDERS[kind]
            width = len(fields)

            for line, cells, syntax_error in rows_iter:
                rows += 1
                if cells is None:
                    add_error(line, None, syntax_error or "malformed CSV")
                    continue
                if len(cells) != width:
                    add_error(line, None, f"expected {width} cells, found {len(cells)}")
                    continue
                values: dict[str, Any] = {}
                bad = False
                for key, convert, can_be_null, cell in zip(keys, converters, nullable, cells, strict=True):
                    if cell == "":
                        if not can_be_null:
                            add_error(line, key, "missing value (the field is not nullable)")
                            bad = True
                        continue
                    try:
                        values[key] = convert(cell)
                    except _CellError as exc:
                        add_error(line, key, str(exc))
                        bad = True
                if not bad:
                    records.append(build(values))
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path} is not UTF-8 text (near line {reader.line_num + 1})") from exc

    if rows == 0:
        warnings.append(f"{path} has a header but no data rows")
    if kind == "interactions" and "EVENT_TYPE" not in keys:
        warnings.append(f"no EVENT_TYPE column: every interaction gets the event type {DEFAULT_EVENT_TYPE!r}")
    if kind in ("items", "users"):
        ids = [r.item_id if isinstance(r, Item) else r.user_id for r in records if not isinstance(r, Interaction)]
        duplicates = len(ids) - len(set(ids))
        if duplicates:
            warnings.append(f"{duplicates} row(s) repeat an earlier id; the last row for each id wins")
    return ImportResult(records, errors, rows, warnings, schema, error_count)


def _build_interaction(values: dict[str, Any]) -> Interaction:
    impression = values.get("IMPRESSION")
    event_value = values.get("EVENT_VALUE")
    return Interaction(
        user_id=values["USER_ID"],
        item_id=values["ITEM_ID"],
        event_type=values.get("EVENT_TYPE") or DEFAULT_EVENT_TYPE,
        timestamp=float(values["TIMESTAMP"]),
        event_value=None if event_value is None else float(event_value),
        recommendation_id=values.get("RECOMMENDATION_ID"),
        session_id=values.get("SESSION_ID"),
        event_id=values.get("EVENT_ID"),
        impression=tuple(v for v in impression.split("|") if v) if impression else (),
        context={k: v for k, v in values.items() if k not in _INTERACTION_FIELDS},
    )


def _build_item(values: dict[str, Any]) -> Item:
    created = values.pop("CREATION_TIMESTAMP", None)
    item_id = values.pop("ITEM_ID")
    return Item(item_id, values, None if created is None else float(created))


def _build_user(values: dict[str, Any]) -> User:
    user_id = values.pop("USER_ID")
    return User(user_id, values)


# Null cells are simply absent from properties and context: Personalize treats a missing value
# and a null alike, and an incremental import replaces a record as a whole anyway.
_BUILDERS: dict[str, Callable[[dict[str, Any]], Interaction | Item | User]] = {
    "interactions": _build_interaction,
    "items": _build_item,
    "users": _build_user,
}


# --------------------------------------------------------------------------- importing
def import_file(
    store: Store,
    dataset_group: str,
    dataset_type: str,
    path: str | Path,
    schema_path: str | Path | None = None,
    max_errors: int = 100,
) -> ImportReport:
    """Validate a bulk CSV file and store it all-or-nothing in ``dataset_group``.

    The schema is the given file, else the group's stored schema for this dataset type, else a
    default built from the header. When any row is bad nothing is written (not even the schema)
    and the report lists up to ``max_errors`` errors with ``ok=False``; it does not raise, so a
    CLI can print them all. Otherwise the schema is stored and the records are written in one
    ``store.ingest`` transaction. Fatal file or schema problems raise InvalidInput; an unknown
    dataset group raises NotFound.
    """
    kind = _kind(dataset_type)
    warnings: list[str] = []
    stored = store.get_schema(dataset_group, kind)  # also fails fast on an unknown dataset group
    if schema_path is not None:
        schema: dict[str, Any] | None = load_schema(schema_path)
        validate_schema(schema, kind)
        source = "file"
        if stored is not None and stored != schema:
            warnings.append(f"the given schema replaces the {kind} schema stored for {dataset_group!r}")
    elif stored is not None:
        schema, source = stored, "stored"
    else:
        schema, source = None, "default"

    try:
        result = read_csv(path, kind, schema, max_errors=max_errors)
    except InvalidInput as exc:
        if source == "stored":
            raise InvalidInput(
                f"{exc.message} (schema stored for dataset group {dataset_group!r})", details=exc.details
            ) from exc
        raise
    warnings.extend(result.warnings)
    imported = {"interactions": 0, "items": 0, "users": 0}
    report = ImportReport(
        dataset_group=dataset_group,
        dataset_type=kind,
        path=str(path),
        ok=result.ok,
        rows=result.rows,
        imported=imported,
        errors=result.errors[:max_errors],
        error_count=result.error_count,
        warnings=warnings,
        schema_source=source,
        schema=result.schema,
    )
    if not result.ok:
        return report

    if result.records:
        counts = store.ingest(dataset_group, result.records)
        imported.update({k: counts.get(k, 0) for k in imported})
    if source != "stored":
        store.put_schema(dataset_group, kind, result.schema)
    warnings.extend(_minimum_warnings(store, dataset_group, kind, result.records))
    return report


def _minimum_warnings(
    store: Store, dataset_group: str, kind: str, records: list[Interaction | Item | User]
) -> list[str]:
    """Warn when the group, after this import, is below Personalize's suggested minimum.

    The file's own distinct ids are a lower bound for the group, so the store is only queried
    for distinct counts when the file alone does not settle the question.
    """
    prefix = f"dataset group {dataset_group!r} is below Personalize's suggested minimum:"
    warnings: list[str] = []
    if kind == "interactions":
        total = store.count_interactions(dataset_group)
        events = [r for r in records if isinstance(r, Interaction)]
        users = {r.user_id for r in events}
        items = {r.item_id for r in events}
        if (len(users) < MIN_USERS or len(items) < MIN_ITEMS) and total != len(events):
            # Earlier imports hold events too: count distinct ids over the whole group.
            arrays = store.interaction_arrays(dataset_group)
            users, items = set(arrays.user_ids.tolist()), set(arrays.item_ids.tolist())
        if total < MIN_INTERACTIONS:
            warnings.append(f"{prefix} {total:,} interactions (at least {MIN_INTERACTIONS:,} suggested)")
        if len(users) < MIN_USERS:
            warnings.append(f"{prefix} {len(users):,} users with interactions (at least {MIN_USERS} suggested)")
        if len(items) < MIN_ITEMS:
            warnings.append(f"{prefix} {len(items):,} items with interactions (at least {MIN_ITEMS} suggested)")
    elif kind == "items":
        n = len({r.item_id for r in records if isinstance(r, Item)})
        if n < MIN_ITEMS:
            n = len(store.items(dataset_group))
        if n < MIN_ITEMS:
            warnings.append(f"{prefix} {n:,} items (at least {MIN_ITEMS} suggested)")
    else:
        n = len({r.user_id for r in records if isinstance(r, User)})
        if n < MIN_USERS:
            n = len(store.users(dataset_group))
        if n < MIN_USERS:
            warnings.append(f"{prefix} {n:,} users (at least {MIN_USERS} suggested)")
    return warnings


def convert_properties(schema: dict[str, Any], dataset_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Type one record's properties by the dataset's schema, as the CSV importer types cells.

    Used by PutItems/PutUsers: keys are the schema's upper-case field names; a field the schema
    does not know, or a value that does not fit its field, is refused with the field's name.
    """
    kind = _kind(dataset_type)
    fields = {f.key: f for f in _parse_schema(schema, kind)}
    out: dict[str, Any] = {}
    for key, value in properties.items():
        field = fields.get(key)
        if field is None:
            raise InvalidInput(f"{key} is not a field of the {kind} schema ({', '.join(sorted(fields))})")
        if value is None or value == "":
            if not field.nullable:
                raise InvalidInput(f"{key} may not be empty")
            continue
        cell = json.dumps(value) if isinstance(value, bool) else str(value)
        try:
            out[key] = _converter(field)(cell)
        except _CellError as exc:
            raise InvalidInput(f"{key}: {exc}") from None
    return out
