"""/v1/events: PutEvents in plain JSON. Stored at once; the next request folds them in."""

from __future__ import annotations

import re

from flask import Blueprint

from engine.api.app import get_store
from engine.api.auth import current_key, require_key
from engine.api.cors import enable_cors
from engine.api.recommendations import json_body
from engine.api.schemas import PutEventsRequest
from engine.errors import InvalidInput, NotFound
from engine.records import Alias, Interaction

bp = Blueprint("events", __name__, url_prefix="/v1")

#: Built once: a schema is reusable, and building one per request cost as much as loading.
_PUT_EVENTS_REQUEST = PutEventsRequest()
enable_cors(bp)

_RESERVED_PROPERTIES = {"userid", "sessionid", "eventtype", "timestamp", "recommendationid", "impression"}


def snake_upper(key: str) -> str:
    """numberOfRatings → NUMBER_OF_RATINGS: PutEvents properties name schema fields in camelCase."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).upper()


def events_to_records(req: dict) -> list[Interaction | Alias]:
    """A PutEvents request as records. Anonymous shoppers are known by their session id; once a
    request names the user too, what that session did anonymously joins the user (an Alias)."""
    user_id = req.get("userId") or req["sessionId"]
    out: list[Interaction | Alias] = []
    if req.get("userId") and req["userId"] != req["sessionId"]:
        out.append(Alias(anonymous_id=req["sessionId"], user_id=req["userId"]))
    for n, event in enumerate(req["eventList"]):
        props = dict(event.get("properties") or {})
        bad = sorted(k for k in props if k.lower() in _RESERVED_PROPERTIES)
        if bad:
            raise InvalidInput(f"eventList[{n}].properties may not contain {', '.join(bad)}")
        # Older Personalize examples put itemId and eventValue inside properties.
        item_id = event.get("itemId") or props.pop("itemId", None)
        value = event.get("eventValue", props.pop("eventValue", None))
        if not item_id:
            raise InvalidInput(f"eventList[{n}].itemId is required: Shelfwise records interactions with items")
        try:
            value = None if value is None else float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"eventList[{n}].eventValue must be a number") from None
        out.append(
            Interaction(
                user_id=user_id,
                item_id=str(item_id),
                event_type=event["eventType"],
                timestamp=event["sentAt"],
                event_value=value,
                session_id=req["sessionId"],
                event_id=event.get("eventId"),
                recommendation_id=event.get("recommendationId"),
                impression=tuple(event.get("impression") or ()),
                context={snake_upper(k): v for k, v in props.items()},
            )
        )
    return out


@bp.post("/events")
@require_key("events")
def put_events():
    req = _PUT_EVENTS_REQUEST.load(json_body())
    store = get_store()
    key = current_key()
    try:
        tracker_group = store.dataset_group_for_tracking_id(req["trackingId"])
    except NotFound:
        raise InvalidInput(f"unknown trackingId {req['trackingId']!r}") from None
    if tracker_group != key.dataset_group:
        raise InvalidInput("the trackingId belongs to another dataset group than this key")
    counts = store.ingest(key.dataset_group, events_to_records(req))
    return {"accepted": counts["interactions"]}
