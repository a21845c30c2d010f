"""Interactions' contextual metadata (device, location...), for the recipes that learn from it.

Read only when the interactions schema declares such fields, and in the order of
:meth:`Store.interaction_arrays` (timestamp, then insertion), so the two line up row for row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select

from engine.storage import tables as t
from engine.storage.store import Store

#: Interactions fields Personalize reserves; any other field in the schema is contextual metadata.
RESERVED_FIELDS = frozenset(
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
        "EVENT_ATTRIBUTION_SOURCE",
    }
)


def contextual_fields(store: Store, dataset_group: str) -> list[str]:
    """The contextual fields the interactions schema declares (upper-case names)."""
    schema = store.get_schema(dataset_group, "interactions") or {}
    names = [str(f.get("name", "")).upper() for f in schema.get("fields", []) if isinstance(f, dict)]
    return [n for n in names if n and n not in RESERVED_FIELDS]


def interaction_contexts(store: Store, dataset_group: str) -> np.ndarray:
    """One dict (or None) per interaction, aligned with ``store.interaction_arrays``."""
    group = store.get_dataset_group(dataset_group)
    values: list[dict[str, Any] | None] = []
    with store.session() as s:
        result = s.execute(
            select(t.InteractionRow.context)
            .where(t.InteractionRow.dataset_group_id == group.id)
            .order_by(t.InteractionRow.timestamp, t.InteractionRow.id)
            .execution_options(yield_per=50_000)
        )
        for part in result.partitions():
            values.extend(row[0] or None for row in part)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
