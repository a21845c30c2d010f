"""personalize-events (rest-json): PutEvents, PutItems, PutUsers. Success is an empty 200."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, g

from engine.api.app import get_store
from engine.api.events import events_to_records, snake_upper
from engine.arns import dataset_arn_parts
from engine.errors import InvalidInput, NotFound
from engine.importing import convert_properties
from engine.records import Item, User

from .schemas import PutEvents, PutItems, PutUsers
from .wire import install_error_handlers, json_body, settings, signed

bp = Blueprint("personalize_events", __name__)

#: Built once: a schema is reusable, and building one per request cost as much as loading.
_PUT_EVENTS = PutEvents()
_PUT_ITEMS = PutItems()
_PUT_USERS = PutUsers()
install_error_handlers(bp)


@bp.post("/events")
@signed
def put_events():
    req = _PUT_EVENTS.load(json_body())
    store = get_store()
    try:
        tracker_group = store.dataset_group_for_tracking_id(req["trackingId"])
    except NotFound:
        raise InvalidInput(f"trackingId {req['trackingId']!r} does not exist") from None
    if tracker_group != g.dataset_group:
        raise InvalidInput("The trackingId belongs to another dataset group than these credentials")
    for event in req["eventList"]:
        source = event.pop("metricAttribution", None)
        if source:
            props = dict(event.get("properties") or {})
            props["eventAttributionSource"] = source["eventAttributionSource"]
            event["properties"] = props
    store.ingest(g.dataset_group, events_to_records(req))
    return {}


def _properties(raw: str | None, index: int) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"record {index}: properties is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidInput(f"record {index}: properties must be a JSON object")
    # PutItems/PutUsers name schema fields in camelCase: creationTimestamp → CREATION_TIMESTAMP.
    return {snake_upper(k): v for k, v in parsed.items()}


def _dataset(arn: str, expected: str) -> tuple[str, dict[str, Any] | None]:
    group, dataset_type = dataset_arn_parts(settings(), arn)
    if dataset_type != expected:
        raise InvalidInput(f"datasetArn must name the {expected} dataset, not {dataset_type}")
    if group != g.dataset_group:
        raise NotFound(f"dataset {arn!r} does not exist for these credentials")
    return group, get_store().get_schema(group, expected)


@bp.post("/items")
@signed
def put_items():
    req = _PUT_ITEMS.load(json_body())
    group, schema = _dataset(req["datasetArn"], "ITEMS")
    records = []
    for n, entry in enumerate(req["items"]):
        props = _properties(entry.get("properties"), n)
        if schema is not None:
            props = convert_properties(schema, "items", {"ITEM_ID": entry["itemId"], **props})
            props.pop("ITEM_ID", None)
        created = props.pop("CREATION_TIMESTAMP", None)
        records.append(Item(entry["itemId"], props, float(created) if created is not None else None))
    get_store().ingest(group, records)
    return {}


@bp.post("/users")
@signed
def put_users():
    req = _PUT_USERS.load(json_body())
    group, schema = _dataset(req["datasetArn"], "USERS")
    records = []
    for n, entry in enumerate(req["users"]):
        props = _properties(entry.get("properties"), n)
        if schema is not None:
            props = convert_properties(schema, "users", {"USER_ID": entry["userId"], **props})
            props.pop("USER_ID", None)
        records.append(User(entry["userId"], props))
    get_store().ingest(group, records)
    return {}
