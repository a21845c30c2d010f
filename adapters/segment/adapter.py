"""Segment as a destination (Webhooks destination, Classic or Actions) → engine records.

Reference: platforms.md §4. Segment POSTs one message per request, or a batch
(``{"batch": [...], "context": {...}}`` as in ``/v1/batch``, or a bare JSON array from the Actions
destination); with a shared secret it adds ``X-Signature`` = hex HMAC-SHA1 of the body.

Segment has no API to read past events back, so there is no back-fill: a merchant replays history
with Segment's own Replay feature into this destination, and it arrives as ordinary deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from adapters.base import Adapter, Delivery, PayloadError, PlatformClient, SignatureError
from adapters.segment.spec import DEFAULT_PRODUCT_PROPERTIES, DEFAULT_USER_TRAITS, MessageParser, name_list
from engine.errors import InvalidInput
from engine.records import Record

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
NO_BACKFILL = (
    "segment has no back-fill API: ask Segment to replay the source's history into the Shelfwise "
    "webhook destination (Segment Replay); it arrives as ordinary, deduplicated deliveries"
)
BATCH = "batch"


def sign(body: bytes, secret: str) -> str:
    """The ``X-Signature`` value: hex HMAC-SHA1 of the raw body with the destination's shared secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def _load(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"Segment body is not JSON: {exc}") from exc


def _messages(payload: Any) -> list[Any] | None:
    """The messages of a batch body, or None when the body is a single message."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("batch"), list) and "type" not in payload:
        context = payload.get("context")
        if isinstance(context, Mapping):
            # /v1/batch: "context ... merged into each" message (platforms.md §4.5).
            return [
                {**m, "context": {**context, **(m.get("context") or {})}} if isinstance(m, dict) else m
                for m in payload["batch"]
            ]
        return payload["batch"]
    return None


class SegmentAdapter(Adapter):
    """``X-Signature`` over the raw body, dedupe on ``messageId`` (batches: the body), spec tables."""

    platform: ClassVar[str] = "segment"
    #: Segment keeps event history to itself: history comes in through Segment's Replay, not an API.
    supports_backfill: ClassVar[bool] = False

    def __init__(
        self,
        *,
        user_traits: tuple[str, ...] = DEFAULT_USER_TRAITS,
        product_properties: tuple[str, ...] = DEFAULT_PRODUCT_PROPERTIES,
    ) -> None:
        self._parser = MessageParser(user_traits=user_traits, product_properties=product_properties)

    @classmethod
    def from_connection(cls, config: dict[str, Any]) -> SegmentAdapter:
        """``user_traits``: the identify traits to keep (default: plan, tiers, customer type);
        ``product_properties``: page/screen properties that name the product on the page."""
        return cls(
            user_traits=name_list(config.get("user_traits"), DEFAULT_USER_TRAITS),
            product_properties=name_list(config.get("product_properties"), DEFAULT_PRODUCT_PROPERTIES),
        )

    # ----------------------------------------------------------------- security and identity
    def verify(self, delivery: Delivery, secret: str) -> None:
        received = str(delivery.headers.get(SIGNATURE_HEADER) or "").strip()
        if not received:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header (set the destination's shared secret)")
        expected = sign(delivery.body, secret)
        if not hmac.compare_digest(expected.encode("ascii"), received.lower().encode("utf-8")):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body (wrong secret or altered body)")

    def topic(self, delivery: Delivery) -> str | None:
        """The message ``type`` (track, identify, page, ...), or ``batch``; Segment sends no topic header."""
        try:
            payload = _load(delivery.body)
        except PayloadError:
            return None
        if _messages(payload) is not None:
            return BATCH
        kind = payload.get("type") if isinstance(payload, dict) else None
        return kind if isinstance(kind, str) and kind else None

    def delivery_id(self, delivery: Delivery) -> str | None:
        """``messageId`` of a single message ("Segment deduplicates events using the messageId").

        A batch has many; a retried batch resends the same bytes, so the intake's body hash is its
        key, and each interaction still carries its own messageId as event id.
        """
        try:
            payload = _load(delivery.body)
        except PayloadError:
            return None
        if not isinstance(payload, dict) or _messages(payload) is not None:
            return None
        message_id = payload.get("messageId")
        return message_id.strip() if isinstance(message_id, str) and message_id.strip() else None

    # ----------------------------------------------------------------- parsing
    def parse(self, delivery: Delivery) -> list[Record]:
        payload = _load(delivery.body)
        messages = _messages(payload)
        if messages is None:
            if not isinstance(payload, dict):
                raise PayloadError(f"Segment body is not a JSON object but {type(payload).__name__}")
            return self._parser.parse(payload)
        records: list[Record] = []
        for position, message in enumerate(messages):
            if not isinstance(message, dict):
                log.warning("segment: batch message %d is not an object; skipped", position)
                continue
            try:
                records.extend(self._parser.parse(message))
            except PayloadError as exc:
                # One malformed message must not hold back the rest of a batch of up to 2,500.
                log.warning("segment: batch message %d (%s) skipped: %s", position, message.get("messageId"), exc)
        return records

    def api_client(self, **options: Any) -> PlatformClient:
        raise InvalidInput(NO_BACKFILL)

    def backfill(self, client: PlatformClient) -> Iterator[Record]:
        """Segment has no API that hands past events to a destination; its Replay feature does."""
        raise InvalidInput(NO_BACKFILL)
