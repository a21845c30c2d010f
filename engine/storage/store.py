"""The Store: the one narrow interface the rest of the engine uses to reach the database.

Everything is addressed by dataset group name and external ids; callers never see ORM rows
(they get small frozen dataclasses), so no session or lazy-loading state leaks across layers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, Text, bindparam, cast, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import AlreadyExists, InvalidInput, NotFound, Unauthorized
from engine.expiring import Expiring
from engine.records import IMPRESSION, Alias, Erasure, Interaction, Item, Record, User
from engine.storage import tables as t
from engine.storage.columns import InteractionColumns, driver_statement, read_postgres, read_rows, read_sqlite
from engine.storage.db import make_engine
from engine.storage.driver_reads import Readers, driver_sql
from engine.storage.upgrade import upgrade_schema

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,62}$")
DOMAINS = ("ECOMMERCE", "VIDEO_ON_DEMAND")
DATASET_TYPES = ("INTERACTIONS", "ITEMS", "USERS")
KEY_KINDS = ("public", "secret")
#: A solution version whose model file retention removed (its record and metrics stay).
ARCHIVED = "ARCHIVED"
#: Events that record what a shopper was shown, not what they did: kept for exploration and
#: attribution, but never folded into a shopper's history or trained on as interest.
NOT_INTERACTIONS = (IMPRESSION,)

#: What a shopper's events are read as on the request path (see ``_user_interactions``).
_EVENT_COLUMNS = (
    t.InteractionRow.item_id,
    t.InteractionRow.event_type,
    t.InteractionRow.event_value,
    t.InteractionRow.timestamp,
    t.InteractionRow.session_id,
    t.InteractionRow.recommendation_id,
)
_LATEST_EVENTS = (
    select(*_EVENT_COLUMNS)
    .where(
        t.InteractionRow.dataset_group_id == bindparam("group"),
        t.InteractionRow.user_id == bindparam("user"),
        t.InteractionRow.event_type.notin_(NOT_INTERACTIONS),
    )
    .order_by(t.InteractionRow.timestamp.desc(), t.InteractionRow.id.desc())
    .limit(bindparam("limit"))
)
_USER_EVENTS = (
    select(*_EVENT_COLUMNS)
    .where(t.InteractionRow.dataset_group_id == bindparam("group"), t.InteractionRow.user_id == bindparam("user"))
    .order_by(t.InteractionRow.timestamp, t.InteractionRow.id)
)


def check_name(name: str, what: str) -> str:
    """Names follow Personalize's pattern, so they can appear in ARNs unchanged."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"invalid {what} name {name!r}: 1-63 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class DatasetGroupInfo:
    id: int
    name: str
    domain: str | None
    created_at: float


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    dataset_group: str
    kind: str
    allowed_origins: tuple[str, ...]


@dataclass(frozen=True)
class DeliveryInfo:
    id: int
    dataset_group: str
    platform: str
    topic: str | None
    headers: dict[str, str]
    body: bytes
    status: str
    dedupe_key: str | None
    error: str | None
    records: int
    received_at: float


@dataclass(frozen=True)
class SolutionInfo:
    id: int
    dataset_group: str
    name: str
    recipe: str
    config: dict[str, Any]


@dataclass(frozen=True)
class SolutionVersionInfo:
    id: str
    solution: str
    dataset_group: str
    recipe: str
    training_mode: str
    status: str
    artifact_path: str | None
    metrics: dict[str, Any]
    num_interactions: int
    training_seconds: float | None
    created_at: float


@dataclass(frozen=True)
class CampaignInfo:
    name: str
    dataset_group: str
    solution_version_id: str
    recipe: str
    artifact_path: str
    config: dict[str, Any]
    updated_at: float


@dataclass
class InteractionArrays:
    """All of a dataset group's interactions as columns, for training and evaluation."""

    user_ids: np.ndarray  # object array of str
    item_ids: np.ndarray
    event_types: np.ndarray
    event_values: np.ndarray  # float64, NaN where absent
    timestamps: np.ndarray  # float64 epoch seconds
    session_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    def __len__(self) -> int:
        return len(self.user_ids)


def _json(value: Any) -> Any:
    """A JSON column as a driver hands it over: already decoded (PostgreSQL) or text (SQLite)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _hash_key(secret_part: str) -> str:
    return hashlib.sha256(secret_part.encode()).hexdigest()


def _user_interactions(user_id: str, rows: Iterable[Any]) -> list[Interaction]:
    """Rows of ``_LATEST_EVENTS`` / ``_USER_EVENTS`` (driver tuples, in ``_EVENT_COLUMNS``' order) as
    the user's interactions, in the rows' order."""
    return [
        Interaction(
            user_id=user_id,
            item_id=item_id,
            event_type=event_type,
            event_value=event_value,
            timestamp=timestamp,
            session_id=session_id,
            recommendation_id=recommendation_id,
        )
        for item_id, event_type, event_value, timestamp, session_id, recommendation_id in rows
    ]


#: Bound values per upsert statement: under both drivers' limits (SQLite 32,766; psycopg 65,535).
_MAX_PARAMETERS = 30_000


class Store:
    """Reads and writes one Shelfwise database (SQLite or PostgreSQL)."""

    def __init__(self, database_url: str, *, create: bool = True) -> None:
        self.database_url = database_url
        self.engine: Engine = make_engine(database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._dialect = self.engine.dialect.name
        # name → (group, expiry): every request resolves its dataset group, and names map to ids
        # for a group's whole life; the short expiry bounds what another process's delete and
        # re-create of the same name can leave stale here.
        self._groups: Expiring[str, DatasetGroupInfo] = Expiring(self.GROUP_CACHE_SECONDS)
        self._keys: Expiring[bytes, ApiKeyInfo] = Expiring(self.KEY_CACHE_SECONDS, max_entries=1000)
        self._readers = Readers(self.engine) if self._dialect == "postgresql" else None
        if create:
            # Tables a newer release added, and the columns and indexes older tables lack.
            upgrade_schema(self.engine, t.Base.metadata)

    def close(self) -> None:
        if self._readers is not None:
            self._readers.close()
        self.engine.dispose()

    def session(self) -> Session:
        return self._sessions()

    # ----------------------------------------------------------------- dataset groups
    def create_dataset_group(self, name: str, domain: str | None = None) -> DatasetGroupInfo:
        check_name(name, "dataset group")
        if domain is not None and domain not in DOMAINS:
            raise InvalidInput(f"invalid domain {domain!r}: use one of {', '.join(DOMAINS)}")
        row = t.DatasetGroup(name=name, domain=domain)
        try:
            with self.session() as s, s.begin():
                s.add(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"dataset group {name!r} already exists") from exc
        return DatasetGroupInfo(row.id, row.name, row.domain, row.created_at)

    GROUP_CACHE_SECONDS = 5.0

    def get_dataset_group(self, name: str) -> DatasetGroupInfo:
        return self._groups.get(name, lambda: self._read_dataset_group(name))

    def _read_dataset_group(self, name: str) -> DatasetGroupInfo:
        with self.session() as s:
            row = s.scalar(select(t.DatasetGroup).where(t.DatasetGroup.name == name))
        if row is None:
            raise NotFound(f"dataset group {name!r} does not exist")
        return DatasetGroupInfo(row.id, row.name, row.domain, row.created_at)

    def list_dataset_groups(self) -> list[DatasetGroupInfo]:
        with self.session() as s:
            rows = s.scalars(select(t.DatasetGroup).order_by(t.DatasetGroup.name)).all()
        return [DatasetGroupInfo(r.id, r.name, r.domain, r.created_at) for r in rows]

    def delete_dataset_group(self, name: str) -> None:
        group = self.get_dataset_group(name)
        self._groups.discard(name)
        self._keys.clear()
        with self.session() as s, s.begin():
            # Explicit deletes rather than relying on ON DELETE CASCADE, which SQLite only honours
            # with foreign keys switched on for the connection.
            for model in (
                t.Filter,
                t.Recommender,
                t.AccessKey,
                t.Campaign,
                t.InteractionRow,
                t.ItemRow,
                t.UserRow,
                t.EventTracker,
                t.ApiKey,
                t.Connection,
                t.WebhookDelivery,
                t.DatasetSchema,
            ):
                s.execute(delete(model).where(model.dataset_group_id == group.id))
            solution_ids = select(t.Solution.id).where(t.Solution.dataset_group_id == group.id)
            search_ids = select(t.HpoSearch.id).where(t.HpoSearch.solution_id.in_(solution_ids))
            s.execute(delete(t.HpoTrial).where(t.HpoTrial.search_id.in_(search_ids)))
            s.execute(delete(t.HpoSearch).where(t.HpoSearch.solution_id.in_(solution_ids)))
            s.execute(delete(t.SolutionVersion).where(t.SolutionVersion.solution_id.in_(solution_ids)))
            s.execute(delete(t.Solution).where(t.Solution.dataset_group_id == group.id))
            s.execute(delete(t.DatasetGroup).where(t.DatasetGroup.id == group.id))

    # ----------------------------------------------------------------- schemas
    def put_schema(self, dataset_group: str, dataset_type: str, schema: dict[str, Any]) -> None:
        dataset_type = dataset_type.upper()
        if dataset_type not in DATASET_TYPES:
            raise InvalidInput(f"invalid dataset type {dataset_type!r}")
        group = self.get_dataset_group(dataset_group)
        with self.session() as s, s.begin():
            existing = s.scalar(
                select(t.DatasetSchema).where(
                    t.DatasetSchema.dataset_group_id == group.id, t.DatasetSchema.dataset_type == dataset_type
                )
            )
            if existing is None:
                s.add(t.DatasetSchema(dataset_group_id=group.id, dataset_type=dataset_type, schema=schema))
            else:
                existing.schema = schema

    def get_schema(self, dataset_group: str, dataset_type: str) -> dict[str, Any] | None:
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            return s.scalar(
                select(t.DatasetSchema.schema).where(
                    t.DatasetSchema.dataset_group_id == group.id,
                    t.DatasetSchema.dataset_type == dataset_type.upper(),
                )
            )

    # ----------------------------------------------------------------- ingest
    def ingest(
        self,
        dataset_group: str,
        records: Iterable[Record],
        *,
        batch_size: int = 5000,
        processed_delivery: int | None = None,
        processed_deliveries: dict[int, int] | None = None,
    ) -> dict[str, int]:
        """Write records in one transaction: all of them land, or none do.

        ``processed_delivery`` marks that webhook delivery processed in the same transaction, so a
        crash can never leave a delivery ingested but not marked (and ingested again on replay).
        ``processed_deliveries`` (delivery id → its record count) does the same for a batch of
        deliveries whose records are all in ``records``.
        Interactions whose ``event_id`` is already stored are skipped.
        """
        group = self.get_dataset_group(dataset_group)
        counts = {"interactions": 0, "items": 0, "users": 0, "erasures": 0, "aliases": 0}
        interactions: list[dict[str, Any]] = []
        items: dict[str, dict[str, Any]] = {}
        users: dict[str, dict[str, Any]] = {}
        rewritten = False  # stored interactions deleted or re-attributed (training snapshots go stale)
        with self.session() as s, s.begin():

            def flush() -> None:
                if interactions:
                    s.execute(self._insert_new_events(), interactions)
                    interactions.clear()
                if items:
                    self._upsert(s, t.ItemRow, list(items.values()), ("dataset_group_id", "item_id"))
                    items.clear()
                if users:
                    self._upsert(s, t.UserRow, list(users.values()), ("dataset_group_id", "user_id"))
                    users.clear()

            now = time.time()
            for record in records:
                if isinstance(record, Interaction):
                    interactions.append(
                        {
                            "dataset_group_id": group.id,
                            "user_id": record.user_id,
                            "item_id": record.item_id,
                            "event_type": record.event_type,
                            "event_value": record.event_value,
                            "timestamp": float(record.timestamp),
                            "session_id": record.session_id,
                            "event_id": record.event_id,
                            "recommendation_id": record.recommendation_id,
                            "impression": list(record.impression) or None,
                            "context": record.context or None,
                        }
                    )
                    counts["interactions"] += 1
                elif isinstance(record, Item):
                    items[record.item_id] = {
                        "dataset_group_id": group.id,
                        "item_id": record.item_id,
                        "properties": record.properties,
                        "creation_timestamp": record.creation_timestamp,
                        "updated_at": now,
                    }
                    counts["items"] += 1
                elif isinstance(record, User):
                    users[record.user_id] = {
                        "dataset_group_id": group.id,
                        "user_id": record.user_id,
                        "properties": record.properties,
                        "updated_at": now,
                    }
                    counts["users"] += 1
                elif isinstance(record, Erasure):
                    flush()
                    rewritten = self._erase(s, group.id, record) or rewritten
                    counts["erasures"] += 1
                elif isinstance(record, Alias):
                    flush()
                    rewritten = self._alias(s, group.id, record) or rewritten
                    counts["aliases"] += 1
                else:
                    raise InvalidInput(f"not a record: {type(record).__name__}")
                if len(interactions) >= batch_size or len(items) >= batch_size or len(users) >= batch_size:
                    flush()
            flush()
            if rewritten:  # last, so concurrent ingests never wait on each other in the other order
                groups = t.DatasetGroup.__table__
                s.execute(
                    update(groups)
                    .where(groups.c.id == group.id)
                    .values(interaction_rewrites=groups.c.interaction_rewrites + 1)
                )
            if processed_delivery is not None:
                s.execute(
                    update(t.WebhookDelivery)
                    .where(t.WebhookDelivery.id == processed_delivery)
                    .values(status="processed", error=None, records=sum(counts.values()), processed_at=time.time())
                )
            if processed_deliveries:
                deliveries = t.WebhookDelivery.__table__
                s.execute(
                    update(deliveries)
                    .where(deliveries.c.id == bindparam("delivery"))
                    .values(status="processed", error=None, records=bindparam("count"), processed_at=time.time()),
                    [{"delivery": d, "count": n} for d, n in processed_deliveries.items()],
                )
        return counts

    def _insert_new_events(self):
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(t.InteractionRow.__table__).on_conflict_do_nothing(
            index_elements=["dataset_group_id", "event_id"], index_where=t.InteractionRow.event_id.isnot(None)
        )

    def _upsert(self, s: Session, model: type[t.Base], rows: list[dict[str, Any]], keys: tuple[str, ...]) -> None:
        """Insert or update ``rows``, in statements of at most :data:`_MAX_PARAMETERS` bound values
        (PostgreSQL's driver takes 65,535 per statement, SQLite 32,766: a 20,000-item import is
        100,000 values)."""
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        step = max(1, _MAX_PARAMETERS // max(1, len(rows[0])))
        for lo in range(0, len(rows), step):
            stmt = dialect.insert(model.__table__).values(rows[lo : lo + step])
            updated = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
            s.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updated))

    # Built once: webhook batches apply an alias per order, and building the statement each time
    # cost more than running it.
    _ALIAS = (
        update(t.InteractionRow.__table__)
        .where(
            t.InteractionRow.__table__.c.dataset_group_id == bindparam("group_id"),
            t.InteractionRow.__table__.c.user_id == bindparam("anonymous_id"),
        )
        .values(user_id=bindparam("known_id"))
    )

    @classmethod
    def _alias(cls, s: Session, group_id: int, alias: Alias) -> bool:
        """Re-attribute the anonymous id's events; True when stored events changed."""
        if alias.anonymous_id == alias.user_id:
            return False
        result = s.execute(
            cls._ALIAS, {"group_id": group_id, "anonymous_id": alias.anonymous_id, "known_id": alias.user_id}
        )
        return bool(result.rowcount)

    @staticmethod
    def _erase(s: Session, group_id: int, erasure: Erasure) -> bool:
        """Delete what the erasure names; True when stored interactions were deleted."""
        deleted = False
        if erasure.user_id is not None:
            result = s.execute(
                delete(t.InteractionRow).where(
                    t.InteractionRow.dataset_group_id == group_id, t.InteractionRow.user_id == erasure.user_id
                )
            )
            deleted = bool(result.rowcount)
            s.execute(
                delete(t.UserRow).where(t.UserRow.dataset_group_id == group_id, t.UserRow.user_id == erasure.user_id)
            )
        if erasure.item_id is not None:
            s.execute(
                delete(t.ItemRow).where(t.ItemRow.dataset_group_id == group_id, t.ItemRow.item_id == erasure.item_id)
            )
        return deleted

    # ----------------------------------------------------------------- reads
    def latest_events(self, dataset_group: str, user_id: str, limit: int = 500) -> list[Interaction]:
        """The user's newest ``limit`` events, oldest first (the order a model folds them in).

        On every recommendation's path: a Core statement compiled once, read with the driver's own
        cursor (the ORM session's bookkeeping cost more than the indexed range read itself)."""
        group = self.get_dataset_group(dataset_group)
        rows = self._event_rows(_LATEST_EVENTS, {"group": group.id, "user": user_id, "limit": limit})
        return _user_interactions(user_id, reversed(rows))

    def user_events(self, dataset_group: str, user_id: str) -> list[Interaction]:
        """Every event of the user, impressions too, oldest first (no cap: filters on event types
        hold over the whole history)."""
        group = self.get_dataset_group(dataset_group)
        return _user_interactions(user_id, self._event_rows(_USER_EVENTS, {"group": group.id, "user": user_id}))

    def _event_rows(self, statement: Any, values: dict[str, Any]) -> list[tuple]:
        """One shopper's events through the driver's own cursor (on PostgreSQL, the thread's own
        autocommit connection; a pooled one elsewhere): the statement is compiled once, and no
        SQLAlchemy connection or result object is built (they cost as much as the indexed read
        itself, on every request)."""
        sql, names, compiled = driver_sql(statement, self.engine.dialect, values)
        params = {**compiled, **values}
        if self._readers is not None:
            return self._readers.rows(sql, tuple(params[n] for n in names) if names is not None else params)
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, tuple(params[n] for n in names) if names is not None else params)
                return cursor.fetchall()
            finally:
                cursor.close()
        finally:
            connection.close()

    def interaction_arrays(self, dataset_group: str) -> InteractionArrays:
        """Every interaction of the group as numpy columns, in timestamp order (ties by id)."""
        columns = self.interaction_columns(dataset_group).by_time(consume=True)

        def strings(vocab: np.ndarray, codes: np.ndarray) -> np.ndarray:
            return np.asarray([*vocab.tolist(), None], dtype=object)[codes]

        return InteractionArrays(
            user_ids=strings(columns.user_vocab, columns.user_codes),
            item_ids=strings(columns.item_vocab, columns.item_codes),
            event_types=strings(columns.type_vocab, columns.type_codes),
            event_values=columns.event_values,
            timestamps=columns.timestamps,
            session_ids=strings(columns.session_vocab, columns.session_codes),
        )

    def interaction_columns(self, dataset_group: str, *, after_id: int = 0) -> InteractionColumns:
        """The group's interactions (impressions left out) with an id above ``after_id``, in id order,
        strings as integer codes (engine.storage.columns): what training reads, all of it or, over a
        snapshot, only what is new (a primary-key range)."""
        group = self.get_dataset_group(dataset_group)
        args = (self.engine, group.id, NOT_INTERACTIONS, int(after_id))
        columns = None
        if self._dialect == "sqlite":
            columns = read_sqlite(*args)
        elif self._dialect == "postgresql":
            columns = read_postgres(*args)
        return read_rows(*args) if columns is None else columns

    def interactions_through(self, dataset_group: str, watermark: int) -> int:
        """How many of the group's interactions (impressions left out) have an id up to
        ``watermark``: a training snapshot that holds a different number is out of date."""
        group = self.get_dataset_group(dataset_group)
        r = t.InteractionRow
        query = select(func.count()).where(
            r.dataset_group_id == group.id, r.id <= int(watermark), r.event_type.notin_(NOT_INTERACTIONS)
        )
        if self._dialect == "sqlite":  # a scan of the rowid range, not a row lookup per index entry
            query = text(
                "SELECT count(*) FROM interactions NOT INDEXED WHERE dataset_group_id = :group AND id <= :watermark"
                " AND event_type NOT IN :excluded"
            ).bindparams(
                bindparam("excluded", expanding=True),
                group=group.id,
                watermark=int(watermark),
                excluded=list(NOT_INTERACTIONS),
            )
        with self.session() as s:
            return int(s.scalar(query))

    def interaction_rewrites(self, dataset_group: str) -> int:
        """How many ingests have deleted or re-attributed stored interactions of the group (erasures,
        aliases): a training snapshot taken at another count is out of date."""
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            value = s.scalar(select(t.DatasetGroup.interaction_rewrites).where(t.DatasetGroup.id == group.id))
        return int(value or 0)

    def _driver_rows(self, query: Any) -> list[tuple]:
        """A select's rows as the database driver returns them (plain tuples; JSON columns as the
        driver decodes them, text on SQLite), for reads of a whole dataset."""
        with self.session() as s:
            connection = s.connection()
            cursor = connection.connection.driver_connection.cursor()
            try:
                cursor.execute(*driver_statement(query, connection.dialect))
                return cursor.fetchall()
            finally:
                cursor.close()

    def count_interactions(self, dataset_group: str) -> int:
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            return s.scalar(
                select(func.count()).select_from(t.InteractionRow).where(t.InteractionRow.dataset_group_id == group.id)
            )

    def item_ids(self, dataset_group: str) -> list[str]:
        """Every catalog item's id (no properties: a training that needs only some entries reads
        those with :meth:`items`)."""
        group = self.get_dataset_group(dataset_group)
        mine = t.ItemRow.dataset_group_id == group.id
        # One string from the database, split in C: a row per id costs several times more at 100,000.
        joined = (
            func.group_concat(t.ItemRow.item_id, "\x1f")
            if self.engine.dialect.name == "sqlite"
            else func.string_agg(t.ItemRow.item_id, "\x1f")
        )
        with self.session() as s:
            count, text = s.execute(select(func.count(), joined).where(mine)).one()
        ids = text.split("\x1f") if count else []
        if len(ids) == count:
            return ids
        rows = self._driver_rows(select(t.ItemRow.item_id).where(mine))  # a separator inside an id
        return [i for (i,) in rows]

    def items(self, dataset_group: str, item_ids: Iterable[str] | None = None) -> dict[str, Item]:
        """Catalog entries by id: all of them, or just ``item_ids`` (unknown ids are left out)."""
        group = self.get_dataset_group(dataset_group)
        if item_ids is None:
            # The whole catalog (training): plain driver rows, not ORM objects, and the properties
            # as JSON text decoded in one json.loads call (one per item cost more than the read).
            rows = self._driver_rows(
                select(t.ItemRow.item_id, cast(t.ItemRow.properties, Text), t.ItemRow.creation_timestamp).where(
                    t.ItemRow.dataset_group_id == group.id
                )
            )
            if not rows:
                return {}
            ids, texts, created = zip(*rows, strict=True)
            properties = json.loads("[" + ",".join(p or "null" for p in texts) + "]")
            return {i: Item(i, p or {}, c) for i, p, c in zip(ids, properties, created, strict=True)}
        query = select(t.ItemRow).where(t.ItemRow.dataset_group_id == group.id)
        if item_ids is not None:
            wanted = list(dict.fromkeys(item_ids))
            if not wanted:
                return {}
            query = query.where(t.ItemRow.item_id.in_(wanted))
        with self.session() as s:
            rows = s.scalars(query).all()
        return {r.item_id: Item(r.item_id, dict(r.properties or {}), r.creation_timestamp) for r in rows}

    def users(self, dataset_group: str, user_ids: Iterable[str] | None = None) -> dict[str, User]:
        group = self.get_dataset_group(dataset_group)
        query = select(t.UserRow).where(t.UserRow.dataset_group_id == group.id)
        if user_ids is not None:
            query = query.where(t.UserRow.user_id.in_(list(user_ids)))
        with self.session() as s:
            rows = s.scalars(query).all()
        return {r.user_id: User(r.user_id, dict(r.properties or {})) for r in rows}

    def events_with_recommendation(self, dataset_group: str, recommendation_id: str) -> list[Interaction]:
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            rows = s.scalars(
                select(t.InteractionRow).where(
                    t.InteractionRow.dataset_group_id == group.id,
                    t.InteractionRow.recommendation_id == recommendation_id,
                )
            ).all()
        return [
            Interaction(
                r.user_id,
                r.item_id,
                r.event_type,
                r.timestamp,
                r.event_value,
                r.session_id,
                r.event_id,
                r.recommendation_id,
            )
            for r in rows
        ]

    # ----------------------------------------------------------------- event trackers
    def create_event_tracker(self, dataset_group: str, name: str) -> str:
        check_name(name, "event tracker")
        group = self.get_dataset_group(dataset_group)
        tracking_id = str(uuid.uuid4())
        try:
            with self.session() as s, s.begin():
                s.add(t.EventTracker(dataset_group_id=group.id, name=name, tracking_id=tracking_id))
        except IntegrityError as exc:
            raise AlreadyExists(f"event tracker {name!r} already exists in {dataset_group!r}") from exc
        return tracking_id

    def dataset_group_for_tracking_id(self, tracking_id: str) -> str:
        with self.session() as s:
            name = s.scalar(
                select(t.DatasetGroup.name)
                .join(t.EventTracker, t.EventTracker.dataset_group_id == t.DatasetGroup.id)
                .where(t.EventTracker.tracking_id == tracking_id)
            )
        if name is None:
            raise NotFound(f"no event tracker with trackingId {tracking_id!r}")
        return name

    def event_trackers(self, dataset_group: str) -> dict[str, str]:
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            rows = s.execute(
                select(t.EventTracker.name, t.EventTracker.tracking_id).where(
                    t.EventTracker.dataset_group_id == group.id
                )
            ).all()
        return {r.name: r.tracking_id for r in rows}

    # ----------------------------------------------------------------- API keys
    def create_api_key(
        self, dataset_group: str, kind: str, allowed_origins: Iterable[str] = ()
    ) -> tuple[str, ApiKeyInfo]:
        """Create a key and return it in full; only its hash is stored, so it is shown once."""
        if kind not in KEY_KINDS:
            raise InvalidInput(f"invalid key kind {kind!r}: use public or secret")
        group = self.get_dataset_group(dataset_group)
        prefix = "pk" if kind == "public" else "sk"
        key_id = f"{prefix}_{secrets.token_hex(8)}"
        secret_part = secrets.token_urlsafe(24)
        origins = tuple(o.rstrip("/") for o in allowed_origins)
        with self.session() as s, s.begin():
            s.add(
                t.ApiKey(
                    dataset_group_id=group.id,
                    key_id=key_id,
                    kind=kind,
                    key_hash=_hash_key(secret_part),
                    allowed_origins=list(origins),
                )
            )
        return f"{key_id}.{secret_part}", ApiKeyInfo(key_id, dataset_group, kind, origins)

    #: How long a key that checked out is trusted before the database is asked again (every
    #: request presents one; a revoked key stops working within this time).
    KEY_CACHE_SECONDS = 1.0

    def authenticate_key(self, key: str) -> ApiKeyInfo:
        return self._keys.get(hashlib.sha256(key.encode()).digest(), lambda: self._authenticate_key(key))

    def _authenticate_key(self, key: str) -> ApiKeyInfo:
        key_id, _, secret_part = key.partition(".")
        with self.session() as s:
            row = s.execute(
                select(t.ApiKey, t.DatasetGroup.name)
                .join(t.DatasetGroup, t.DatasetGroup.id == t.ApiKey.dataset_group_id)
                .where(t.ApiKey.key_id == key_id)
            ).first()
        expected = row[0].key_hash if row else _hash_key("no such key")
        if not hmac.compare_digest(expected, _hash_key(secret_part)) or row is None or row[0].revoked:
            raise Unauthorized("invalid API key")
        api_key, group_name = row
        return ApiKeyInfo(api_key.key_id, group_name, api_key.kind, tuple(api_key.allowed_origins or ()))

    # ----------------------------------------------------------------- platform connections
    def connect(
        self,
        dataset_group: str,
        platform: str,
        secret: str,
        config: dict[str, Any] | None = None,
        *,
        keep_previous_for: float | None = None,
    ) -> None:
        """Create or replace the dataset group's connection to ``platform``.

        ``keep_previous_for`` (seconds) rotates the secret: deliveries signed with the one it
        replaces are still accepted for that long, since a platform switches over gradually and
        retries deliveries signed before the switch. Without it, only ``secret`` is accepted.
        """
        if not secret:
            raise InvalidInput("a connection needs a non-empty secret")
        group = self.get_dataset_group(dataset_group)
        with self.session() as s, s.begin():
            row = s.scalar(
                select(t.Connection).where(t.Connection.dataset_group_id == group.id, t.Connection.platform == platform)
            )
            if row is None:
                if keep_previous_for is not None:
                    raise InvalidInput(f"{dataset_group!r} has no {platform} connection yet: no secret to rotate")
                s.add(t.Connection(dataset_group_id=group.id, platform=platform, secret=secret, config=config or {}))
            else:
                if keep_previous_for is not None and row.secret != secret:
                    row.previous_secret, row.previous_secret_until = row.secret, time.time() + keep_previous_for
                elif keep_previous_for is None:
                    row.previous_secret, row.previous_secret_until = None, None
                row.secret = secret
                row.config = config or {}

    def connection(self, dataset_group: str, platform: str) -> tuple[str, dict[str, Any]]:
        """The (secret, config) of a connection; NotFound when the store never connected."""
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            row = s.scalar(
                select(t.Connection).where(t.Connection.dataset_group_id == group.id, t.Connection.platform == platform)
            )
        if row is None:
            raise NotFound(f"dataset group {dataset_group!r} has no {platform} connection")
        return row.secret, dict(row.config or {})

    # ----------------------------------------------------------------- webhook deliveries
    def record_delivery(
        self, dataset_group: str, platform: str, topic: str | None, headers: dict[str, str], body: bytes
    ) -> int:
        """Durably store a raw delivery; returns its id. Called before anything else is done."""
        group = self.get_dataset_group(dataset_group)
        row = t.WebhookDelivery(
            dataset_group_id=group.id, platform=platform, topic=topic, headers=headers, body=body, status="received"
        )
        with self.session() as s, s.begin():
            s.add(row)
        return row.id

    def claim_delivery(self, delivery_id: int, dedupe_key: str) -> bool:
        """Attach the platform's delivery id; False when another delivery already holds it.

        The database's unique constraint decides, so concurrent retries cannot both win.
        """
        try:
            with self.session() as s, s.begin():
                s.execute(
                    update(t.WebhookDelivery)
                    .where(t.WebhookDelivery.id == delivery_id)
                    .values(dedupe_key=dedupe_key[:256])
                )
        except IntegrityError:
            return False
        return True

    def mark_delivery(self, delivery_id: int, status: str, *, error: str | None = None, records: int = 0) -> None:
        with self.session() as s, s.begin():
            s.execute(
                update(t.WebhookDelivery)
                .where(t.WebhookDelivery.id == delivery_id)
                .values(status=status, error=error, records=records, processed_at=time.time())
            )

    def deliveries(
        self, dataset_group: str | None = None, *, status: str | None = None, ids: Iterable[int] | None = None
    ) -> list[DeliveryInfo]:
        query = select(t.WebhookDelivery, t.DatasetGroup.name).join(
            t.DatasetGroup, t.DatasetGroup.id == t.WebhookDelivery.dataset_group_id
        )
        if dataset_group is not None:
            query = query.where(t.DatasetGroup.name == dataset_group)
        if status is not None:
            query = query.where(t.WebhookDelivery.status == status)
        if ids is not None:
            query = query.where(t.WebhookDelivery.id.in_(list(ids)))
        with self.session() as s:
            rows = s.execute(query.order_by(t.WebhookDelivery.id)).all()
        return [
            DeliveryInfo(
                d.id,
                name,
                d.platform,
                d.topic,
                dict(d.headers),
                bytes(d.body),
                d.status,
                d.dedupe_key,
                d.error,
                d.records,
                d.received_at,
            )
            for d, name in rows
        ]

    # ----------------------------------------------------------------- solutions
    def create_solution(self, dataset_group: str, name: str, recipe: str, config: dict[str, Any]) -> SolutionInfo:
        check_name(name, "solution")
        group = self.get_dataset_group(dataset_group)
        row = t.Solution(dataset_group_id=group.id, name=name, recipe=recipe, config=config)
        try:
            with self.session() as s, s.begin():
                s.add(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"solution {name!r} already exists in {dataset_group!r}") from exc
        return SolutionInfo(row.id, dataset_group, name, recipe, dict(config))

    def set_solution_hyperparameters(self, solution: SolutionInfo, hyperparameters: dict[str, Any]) -> SolutionInfo:
        """Replace a solution's hyperparameters (a search's choice), keeping the rest of its config."""
        config = {**solution.config, "hyperparameters": dict(hyperparameters)}
        with self.session() as s, s.begin():
            s.execute(update(t.Solution).where(t.Solution.id == solution.id).values(config=config))
        return SolutionInfo(solution.id, solution.dataset_group, solution.name, solution.recipe, config)

    def get_solution(self, dataset_group: str, name: str) -> SolutionInfo:
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            row = s.scalar(select(t.Solution).where(t.Solution.dataset_group_id == group.id, t.Solution.name == name))
        if row is None:
            raise NotFound(f"solution {name!r} does not exist in {dataset_group!r}")
        return SolutionInfo(row.id, dataset_group, row.name, row.recipe, dict(row.config or {}))

    def add_solution_version(
        self,
        solution: SolutionInfo,
        *,
        training_mode: str,
        artifact_path: str,
        num_interactions: int,
        training_seconds: float,
        metrics: dict[str, Any] | None = None,
        version_id: str | None = None,
    ) -> SolutionVersionInfo:
        version_id = version_id or f"sv-{uuid.uuid4().hex[:16]}"
        row = t.SolutionVersion(
            id=version_id,
            solution_id=solution.id,
            training_mode=training_mode.upper(),
            status="ACTIVE",
            artifact_path=artifact_path,
            metrics=metrics or {},
            num_interactions=num_interactions,
            training_seconds=training_seconds,
        )
        with self.session() as s, s.begin():
            s.add(row)
        return self.get_solution_version(version_id)

    def get_solution_version(self, version_id: str) -> SolutionVersionInfo:
        with self.session() as s:
            row = s.execute(
                select(t.SolutionVersion, t.Solution, t.DatasetGroup.name)
                .join(t.Solution, t.Solution.id == t.SolutionVersion.solution_id)
                .join(t.DatasetGroup, t.DatasetGroup.id == t.Solution.dataset_group_id)
                .where(t.SolutionVersion.id == version_id)
            ).first()
        if row is None:
            raise NotFound(f"solution version {version_id!r} does not exist")
        v, sol, group_name = row
        return SolutionVersionInfo(
            v.id,
            sol.name,
            group_name,
            sol.recipe,
            v.training_mode,
            v.status,
            v.artifact_path,
            dict(v.metrics or {}),
            v.num_interactions,
            v.training_seconds,
            v.created_at,
        )

    def solution_version_ids(self, dataset_group: str, solution: str) -> list[tuple[str, str]]:
        """(id, status) of every version of the solution, newest first."""
        info = self.get_solution(dataset_group, solution)
        with self.session() as s:
            rows = s.execute(
                select(t.SolutionVersion.id, t.SolutionVersion.status)
                .where(t.SolutionVersion.solution_id == info.id)
                .order_by(t.SolutionVersion.created_at.desc())
            ).all()
        return [(r.id, r.status) for r in rows]

    def served_version_ids(self, dataset_group: str) -> set[str]:
        """The versions the dataset group's campaigns point at."""
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            return set(
                s.scalars(select(t.Campaign.solution_version_id).where(t.Campaign.dataset_group_id == group.id)).all()
            )

    def set_solution_version_status(self, version_id: str, status: str) -> None:
        with self.session() as s, s.begin():
            s.execute(update(t.SolutionVersion).where(t.SolutionVersion.id == version_id).values(status=status))

    def latest_solution_version(self, dataset_group: str, solution: str) -> SolutionVersionInfo | None:
        info = self.get_solution(dataset_group, solution)
        with self.session() as s:
            version_id = s.scalar(
                select(t.SolutionVersion.id)
                .where(t.SolutionVersion.solution_id == info.id)
                .order_by(t.SolutionVersion.created_at.desc())
                .limit(1)
            )
        return self.get_solution_version(version_id) if version_id else None

    # ----------------------------------------------------------------- campaigns
    def create_campaign(
        self, name: str, solution_version_id: str, config: dict[str, Any] | None = None, *, replace: bool = False
    ) -> CampaignInfo:
        """Deploy a solution version under ``name`` in its own dataset group.

        ``replace`` points an existing campaign at the new version (Personalize's UpdateCampaign):
        servers notice the change on their next request for it, so no request is dropped.
        """
        check_name(name, "campaign")
        version = self.get_solution_version(solution_version_id)
        if version.status == ARCHIVED:
            raise InvalidInput(
                f"solution version {version.id!r} is archived: retention removed its model file; "
                "deploy a newer version or train a new one"
            )
        group = self.get_dataset_group(version.dataset_group)
        with self.session() as s, s.begin():
            row = s.scalar(select(t.Campaign).where(t.Campaign.dataset_group_id == group.id, t.Campaign.name == name))
            if row is not None and not replace:
                raise AlreadyExists(f"campaign {name!r} already exists in {group.name!r}")
            if row is None:
                s.add(
                    t.Campaign(
                        dataset_group_id=group.id, name=name, solution_version_id=version.id, config=config or {}
                    )
                )
            else:
                row.solution_version_id = version.id
                row.config = config if config is not None else row.config
                row.updated_at = time.time()
        return self.get_campaign(group.name, name)

    def get_campaign(self, dataset_group: str, name: str) -> CampaignInfo:
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            row = s.execute(
                select(t.Campaign, t.SolutionVersion.artifact_path, t.Solution.recipe)
                .join(t.SolutionVersion, t.SolutionVersion.id == t.Campaign.solution_version_id)
                .join(t.Solution, t.Solution.id == t.SolutionVersion.solution_id)
                .where(t.Campaign.dataset_group_id == group.id, t.Campaign.name == name)
            ).first()
        if row is None:
            raise NotFound(f"campaign {name!r} does not exist in {dataset_group!r}")
        c, artifact_path, recipe = row
        return CampaignInfo(
            c.name, dataset_group, c.solution_version_id, recipe, artifact_path, dict(c.config or {}), c.updated_at
        )

    def list_campaigns(self, dataset_group: str) -> list[CampaignInfo]:
        group = self.get_dataset_group(dataset_group)
        with self.session() as s:
            names = s.scalars(
                select(t.Campaign.name).where(t.Campaign.dataset_group_id == group.id).order_by(t.Campaign.name)
            ).all()
        return [self.get_campaign(dataset_group, n) for n in names]
