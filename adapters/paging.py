"""Resumable back-fill passes: each resource is read page by page, with a checkpoint per page.

The state of a stream (kept in the connection settings under ``backfill``, see
:class:`adapters.actions.Checkpoint`) says where an unfinished pass continues (``cursor``: a next-page
URL or a page number) and, once a pass completes, from which change time the next pass starts
(``next_since``, in the platform's own format). So a rerun after an interruption continues where it
stopped, and a rerun after a complete pass only catches up on what changed since: WooCommerce never
retries a failed webhook, and this is how the gap closes.

``next_since`` is the earlier of the newest ``updated_at`` the pass saw and the platform's clock
(its ``Date`` header) when the pass began: a resource changed while the pass was reading later
pages may have been read before it changed, and must be read again next time. Both times are the
platform's own, so a skewed clock here cannot open a gap.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.actions import Checkpoint
from adapters.base import CaseInsensitiveHeaders, PayloadError
from engine.records import Record


def translate_rows(
    rows: Sequence[Any], translate: Callable[[dict[str, Any]], Any], *, platform: str, what: str, log: logging.Logger
) -> list[Record]:
    """Each row's records (a translation gives one record or a list); a row that is not an object,
    or that its translation refuses, is logged and skipped: one bad entry must not stop a back-fill."""
    records: list[Record] = []
    for row in rows:
        if not isinstance(row, dict):
            log.warning("%s back-fill: a %s entry is not an object; skipped", platform, what)
            continue
        try:
            translated = translate(row)
        except PayloadError as exc:
            log.warning("%s back-fill: %s %s skipped: %s", platform, what, row.get("id"), exc.message)
            continue
        records.extend(translated if isinstance(translated, list) else [translated])
    return records


@dataclass(frozen=True)
class Page:
    records: list[Record]
    #: Where the next page is (URL, page number); None when this was the last page.
    next_cursor: Any
    #: The newest change time on this page, as the platform writes it (None: the page was empty).
    newest: str | None = None
    #: The platform's clock when it answered (its ``Date`` header), in the same format.
    answered_at: str | None = None


@dataclass(frozen=True)
class Stream:
    """One resource (products, orders, ...): ``fetch(cursor, since)`` reads one page of it."""

    name: str
    first_cursor: Any
    fetch: Callable[[Any, str | None], Page]


def run_streams(
    streams: Sequence[Stream],
    state: dict[str, Any] | None,
    *,
    since: str | None,
    time_key: Callable[[str], float],
) -> Iterator[Record | Checkpoint]:
    """Yield every record of every stream, and a Checkpoint with the whole state after each page.

    ``since`` (the ``--since`` of the command, already in the platform's format) starts a fresh pass
    from that time; without it an unfinished pass resumes and a finished one catches up.
    """
    state = copy.deepcopy(state or {})
    for stream in streams:
        current = state.setdefault(stream.name, {})
        if since is not None or not current.get("running"):
            current.update(
                running=True,
                cursor=stream.first_cursor,
                since=since if since is not None else current.get("next_since"),
                seen=None,
                began=None,
            )
        while current["running"]:
            page = stream.fetch(current["cursor"], current["since"])
            yield from page.records
            if page.newest and (current["seen"] is None or time_key(page.newest) > time_key(current["seen"])):
                current["seen"] = page.newest
            if current.get("began") is None:
                current["began"] = page.answered_at
            if page.next_cursor is None:
                marks = [m for m in (current["seen"], current["began"]) if m]
                current.update(
                    running=False,
                    cursor=None,
                    next_since=min(marks, key=time_key) if marks else current["since"],
                )
            else:
                current["cursor"] = page.next_cursor
            yield Checkpoint(copy.deepcopy(state))


def newest(values: Sequence[Any], time_key: Callable[[str], float]) -> str | None:
    """The latest of some platform timestamps (strings); None when there are none."""
    present = [v for v in values if isinstance(v, str) and v]
    return max(present, key=time_key) if present else None


def answered_at(headers: CaseInsensitiveHeaders, fmt: str) -> str | None:
    """The platform's ``Date`` header, written in the platform's own timestamp format (UTC)."""
    value = headers.get("Date")
    try:
        moment = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(fmt)
