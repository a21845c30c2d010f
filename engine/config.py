"""Layered configuration: defaults, then ``SHELFWISE_*`` environment, then explicit arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///shelfwise.db"


@dataclass(frozen=True)
class Settings:
    #: SQLAlchemy URL. SQLite is the embedded default; PostgreSQL (postgresql+psycopg://) in production.
    database_url: str = DEFAULT_DATABASE_URL
    #: Where solution version artifacts (.npz) are written. Default: beside a SQLite file, or
    #: ./shelfwise-artifacts for a server database.
    artifact_dir: str = ""
    #: Largest webhook body accepted, in bytes (larger: HTTP 413).
    max_body_bytes: int = 1_000_000
    #: How many of a user's latest events a request folds in.
    live_history_limit: int = 500
    #: Master key (Fernet, urlsafe base64) that encrypts stored SigV4 secrets. When empty, a key
    #: file is used: ``master_key_file``, created with mode 0600 on first use.
    master_key: str = ""
    #: Default: ``shelfwise-master.key`` beside the artifact directory.
    master_key_file: str = ""
    #: AWS region and account that this server's ARNs name (Personalize-compatible API).
    aws_region: str = "us-east-1"
    aws_account: str = "000000000000"
    #: Allowed clock skew for signed requests, in seconds (AWS allows 15 minutes).
    max_clock_skew_seconds: int = 900
    #: How often each worker re-reads impression and click counts for exploration, in seconds.
    exploration_refresh_seconds: float = 30.0
    #: How often ``shelfwise serve`` (and ``shelfwise retrain --due``) gives each deployed solution
    #: UPDATE training and FULL training: a duration such as 30m, 2h or 7d; "0" turns it off.
    retrain_update_every: str = "2h"
    retrain_full_every: str = "7d"
    #: Model files kept per solution by scheduled retraining (older unserved versions are archived).
    retrain_keep_versions: int = 5
    #: Extra settings for tests and embedding.
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_artifact_dir(self) -> Path:
        if self.artifact_dir:
            return Path(self.artifact_dir)
        if self.database_url.startswith("sqlite:///") and self.database_url != "sqlite:///:memory:":
            db_path = Path(self.database_url.removeprefix("sqlite:///"))
            return db_path.parent / f"{db_path.stem}-artifacts"
        return Path("shelfwise-artifacts")

    def resolved_master_key_file(self) -> Path:
        if self.master_key_file:
            return Path(self.master_key_file)
        return self.resolved_artifact_dir().parent / "shelfwise-master.key"


_ENV_PREFIX = "SHELFWISE_"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, with explicit (non-None) overrides winning."""
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "extra":
            continue
        raw = os.environ.get(_ENV_PREFIX + f.name.upper())
        if raw is not None and raw != "":
            values[f.name] = int(raw) if f.type in ("int", int) else float(raw) if f.type in ("float", float) else raw
    settings = replace(Settings(), **values)
    explicit = {k: v for k, v in overrides.items() if v is not None}
    return replace(settings, **explicit)
