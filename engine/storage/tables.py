"""SQLAlchemy 2 table models. Every tenant-owned row carries its dataset group."""

from __future__ import annotations

import time

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _now() -> float:
    return time.time()


class Base(DeclarativeBase):
    pass


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for event tables.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class DatasetGroup(Base):
    __tablename__ = "dataset_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    domain: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    #: Ingests that deleted or re-attributed stored interactions (erasures, aliases): a training
    #: snapshot of the interactions is out of date once this moves (engine.jobs.snapshot).
    interaction_rewrites: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class DatasetSchema(Base):
    """The Avro-style schema of one dataset (INTERACTIONS, ITEMS or USERS) of a dataset group."""

    __tablename__ = "dataset_schemas"
    __table_args__ = (UniqueConstraint("dataset_group_id", "dataset_type"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    dataset_type: Mapped[str] = mapped_column(String(16))
    schema: Mapped[dict] = mapped_column(JSON)


class ItemRow(Base):
    __tablename__ = "items"
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    properties: Mapped[dict] = mapped_column(JSON, default=dict)
    creation_timestamp: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, default=_now)


class UserRow(Base):
    __tablename__ = "users"
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    properties: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[float] = mapped_column(Float, default=_now)


class InteractionRow(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        # Every request reads one user's latest events: this index makes that a bounded range scan.
        Index("ix_interactions_user_time", "dataset_group_id", "user_id", "timestamp"),
        Index("ix_interactions_session", "dataset_group_id", "session_id"),
        Index("ix_interactions_item", "dataset_group_id", "item_id"),
        # trending-now counts everybody's events of the last few windows at request time.
        Index("ix_interactions_time", "dataset_group_id", "timestamp"),
        # An event sent twice (a platform retry, orders/create then orders/paid, a PutEvents retry)
        # is stored once: Personalize likewise ignores later events with the same eventId.
        Index(
            "uq_interactions_event_id",
            "dataset_group_id",
            "event_id",
            unique=True,
            sqlite_where=text("event_id IS NOT NULL"),
            postgresql_where=text("event_id IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(256))
    item_id: Mapped[str] = mapped_column(String(256))
    event_type: Mapped[str] = mapped_column(String(256))
    event_value: Mapped[float | None] = mapped_column(Float)
    timestamp: Mapped[float] = mapped_column(Float)
    session_id: Mapped[str | None] = mapped_column(String(256))
    event_id: Mapped[str | None] = mapped_column(String(256))
    recommendation_id: Mapped[str | None] = mapped_column(String(64))
    impression: Mapped[list | None] = mapped_column(JSON)
    context: Mapped[dict | None] = mapped_column(JSON)


class EventTracker(Base):
    __tablename__ = "event_trackers"
    __table_args__ = (UniqueConstraint("dataset_group_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    tracking_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class ApiKey(Base):
    """An API key. Only a hash of the secret part is kept; the key is shown once at creation."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "public" (read + events) or "secret" (everything)
    key_hash: Mapped[str] = mapped_column(String(128))
    allowed_origins: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Connection(Base):
    """A platform connection (Shopify store, WooCommerce site, ...) with its webhook secret."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("dataset_group_id", "platform"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    secret: Mapped[str] = mapped_column(Text)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    #: The secret before the last rotation, still accepted until ``previous_secret_until`` (epoch
    #: seconds) while the platform switches over to the new one.
    previous_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class WebhookDelivery(Base):
    """Every raw delivery, stored before it is trusted or acknowledged.

    ``dedupe_key`` is set only after the signature checks out, so a forged request can never
    claim a genuine delivery's id; the unique constraint then drops platform retries.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("dataset_group_id", "platform", "dedupe_key", name="uq_delivery_dedupe"),
        Index("ix_deliveries_status", "dataset_group_id", "status"),
        # The processing queue: workers claim the oldest deliveries of a status, across groups.
        Index("ix_deliveries_queue", "status", "id"),
    )
    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(128))
    headers: Mapped[dict] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[float] = mapped_column(Float, default=_now)
    # received | verified → processing → processed | failed; or rejected | duplicate | ping at once
    # (webhooks/processing.py has the whole life cycle).
    status: Mapped[str] = mapped_column(String(16), default="received")
    dedupe_key: Mapped[str | None] = mapped_column(String(256))
    error: Mapped[str | None] = mapped_column(Text)
    records: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[float | None] = mapped_column(Float)
    # A worker holds a "processing" delivery until then; past it, another worker may take it over.
    lease_until: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the raw body and headers were erased (retention elapsed, or a shopper's erasure).
    purged_at: Mapped[float | None] = mapped_column(Float)


class Solution(Base):
    __tablename__ = "solutions"
    __table_args__ = (UniqueConstraint("dataset_group_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    recipe: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class SolutionVersion(Base):
    __tablename__ = "solution_versions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    solution_id: Mapped[int] = mapped_column(ForeignKey("solutions.id", ondelete="CASCADE"))
    training_mode: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    artifact_path: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    num_interactions: Mapped[int] = mapped_column(BigInteger, default=0)
    training_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("dataset_group_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    solution_version_id: Mapped[str] = mapped_column(ForeignKey("solution_versions.id"))
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    updated_at: Mapped[float] = mapped_column(Float, default=_now)


class AccessKey(Base):
    """An AWS-style access key pair for the Personalize-compatible API.

    SigV4 needs the secret itself to check a signature, so it cannot be hashed: it is stored
    encrypted under the server's master key (engine/crypto.py) and shown once at creation.
    """

    __tablename__ = "access_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    access_key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Filter(Base):
    """A Personalize filter expression, parsed and validated before it is stored (there is no
    update: Personalize's filters are deleted and created again)."""

    __tablename__ = "filters"
    __table_args__ = (UniqueConstraint("dataset_group_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    expression: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class Recommender(Base):
    """A domain recommender (Personalize's ECOMMERCE / VIDEO_ON_DEMAND use cases): a preset recipe
    with the filters its use case implies, served from its solution's newest version."""

    __tablename__ = "recommenders"
    __table_args__ = (UniqueConstraint("dataset_group_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    use_case: Mapped[str] = mapped_column(String(64))
    solution: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class Lease(Base):
    """A named lease with an expiry: which process may run a job now (engine/jobs/leases.py).

    Several servers on one database each run a retraining scheduler; the row lets exactly one of
    them act, and a holder that dies loses the lease when it expires instead of holding it forever.
    """

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)
    acquired_at: Mapped[float] = mapped_column(Float, default=_now)


class HpoSearch(Base):
    """One hyperparameter search (``shelfwise train --hpo``) and what it chose for its version.

    Written before the first trial, so trials are kept even if training stops half-way; hence no
    foreign key to the solution version, whose row is added only once the final training is saved.
    """

    __tablename__ = "hpo_searches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    solution_id: Mapped[int] = mapped_column(ForeignKey("solutions.id", ondelete="CASCADE"))
    solution_version_id: Mapped[str] = mapped_column(String(64), unique=True)
    metric: Mapped[str] = mapped_column(String(64))
    #: Hyperparameter name → the range searched, as text ("16..256 (log)").
    space: Mapped[dict] = mapped_column(JSON, default=dict)
    trials_requested: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="IN_PROGRESS")  # → COMPLETED | FAILED
    #: The validation split: how many users were held out and how many requests were scored.
    validation: Mapped[dict] = mapped_column(JSON, default=dict)
    best_trial: Mapped[int | None] = mapped_column(Integer)
    best_value: Mapped[float | None] = mapped_column(Float)
    #: Every hyperparameter the final FULL training used (the solution's, with the best trial's).
    hyperparameters: Mapped[dict | None] = mapped_column(JSON)
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class HpoTrial(Base):
    """One trial of a search: the values it tried and every metric they scored on validation."""

    __tablename__ = "hpo_trials"
    __table_args__ = (UniqueConstraint("search_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("hpo_searches.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    value: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # COMPLETE | FAILED
    error: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
