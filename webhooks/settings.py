"""The intake's own settings, layered like the engine's: defaults, ``SHELFWISE_*`` environment, then
explicit values (``Settings.extra``, which tests and embedders set)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.errors import InvalidInput

DAY = 86_400.0


@dataclass(frozen=True)
class IntakeSettings:
    #: Where ``customers/data_request`` exports are written (``SHELFWISE_EXPORT_DIR``), one folder
    #: per dataset group.
    export_dir: Path = Path("shelfwise-exports")
    #: How long a raw delivery body (names, e-mails, addresses) is kept once the delivery is done
    #: with (``SHELFWISE_WEBHOOK_RETENTION_DAYS``, default 7): long enough to replay a failure.
    retention_seconds: float = 7 * DAY
    #: Run the background worker in each app process (``SHELFWISE_WEBHOOK_WORKER=0`` to leave
    #: processing to another process, e.g. a dedicated ``shelfwise serve``).
    worker: bool = True
    #: How often an idle worker looks for deliveries stored by other processes or left by a crash.
    poll_seconds: float = 1.0
    #: How long a worker may hold a delivery before another may take it over: how long the
    #: deliveries a crashed worker held wait (a batch takes milliseconds; a slow privacy request
    #: renews the lease of the rest of its batch).
    lease_seconds: float = 30.0
    #: Claims of one delivery before it is marked failed (it crashed its worker each time).
    max_attempts: int = 5
    #: Deliveries one worker claims at a time.
    batch_size: int = 50
    #: How long a woken worker waits for more deliveries to batch with the first (seconds).
    linger_seconds: float = 0.02

    @classmethod
    def from_settings(cls, settings: Settings | None) -> IntakeSettings:
        extra = settings.extra if settings is not None else {}
        return cls(
            export_dir=Path(_pick(extra, "export_dir", str, str(cls.export_dir))),
            retention_seconds=_pick(extra, "webhook_retention_days", float, 7.0) * DAY,
            worker=_pick(extra, "webhook_worker", _flag, True),
            poll_seconds=_pick(extra, "webhook_poll_seconds", float, cls.poll_seconds),
            lease_seconds=_pick(extra, "webhook_lease_seconds", float, cls.lease_seconds),
        )


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a yes/no value")


def _pick(extra: dict[str, Any], name: str, convert: Any, default: Any) -> Any:
    raw = extra.get(name)
    if raw is None:
        raw = os.environ.get(f"SHELFWISE_{name.upper()}") or None
    if raw is None:
        return default
    try:
        return convert(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"setting {name} / SHELFWISE_{name.upper()}: {exc}") from exc
