"""mParticle's Webhook ("Event") output → engine records.

Reference: platforms.md §5. mParticle signs nothing: its only protection is a static
``Authorization`` header value configured in the output's settings (``Basic <base64>`` or any
scheme), stored here as the connection's secret and compared whole, in constant time. The body is
a batch (``events[]`` plus user identities and attributes), by default about ten minutes of one
device's events.

mParticle offers no API to read events back; history comes through mParticle's own replay of the
input into this output, so there is no back-fill here.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from adapters.base import Adapter, Delivery, PayloadError, PlatformClient, SignatureError
from adapters.mparticle.batch import DEFAULT_PRODUCT_ATTRIBUTES, DEFAULT_USER_ATTRIBUTES, BatchParser
from adapters.segment.spec import name_list
from engine.errors import InvalidInput
from engine.records import Record

AUTHORIZATION_HEADER = "Authorization"
NO_BACKFILL = (
    "mparticle has no back-fill API: ask mParticle to replay the input's history into the Shelfwise "
    "webhook output; it arrives as ordinary, deduplicated deliveries"
)


def sign(body: bytes, secret: str) -> dict[str, str]:
    """The headers mParticle sends for ``secret`` (the configured Authorization value); the body
    is not part of it, which is exactly mParticle's weakness (platforms.md §5.1)."""
    del body
    return {AUTHORIZATION_HEADER: secret}


def _load_batch(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"mParticle body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise PayloadError(f"mParticle body is not a JSON object but {type(payload).__name__}")
    return payload


class MParticleAdapter(Adapter):
    """Authorization value check, dedupe on ``batch_id``/``source_request_id``, commerce tables."""

    platform: ClassVar[str] = "mparticle"
    supports_backfill: ClassVar[bool] = False

    def __init__(
        self,
        *,
        user_attributes: tuple[str, ...] = DEFAULT_USER_ATTRIBUTES,
        product_attributes: tuple[str, ...] = DEFAULT_PRODUCT_ATTRIBUTES,
    ) -> None:
        self._parser = BatchParser(user_attributes=user_attributes, product_attributes=product_attributes)

    @classmethod
    def from_connection(cls, config: dict[str, Any]) -> MParticleAdapter:
        """``user_attributes``: custom user attributes to keep; ``product_attributes``: custom
        attributes of custom events and screen views that name a product."""
        return cls(
            user_attributes=name_list(config.get("user_attributes"), DEFAULT_USER_ATTRIBUTES),
            product_attributes=name_list(config.get("product_attributes"), DEFAULT_PRODUCT_ATTRIBUTES),
        )

    def verify(self, delivery: Delivery, secret: str) -> None:
        received = str(delivery.headers.get(AUTHORIZATION_HEADER) or "").strip()
        if not received:
            raise SignatureError(f"missing {AUTHORIZATION_HEADER} header (set the output's Authorization Header)")
        if not hmac.compare_digest(secret.strip().encode("utf-8"), received.encode("utf-8")):
            raise SignatureError(f"{AUTHORIZATION_HEADER} does not match the connection's configured value")

    def topic(self, delivery: Delivery) -> str | None:
        """The batch's event types, sorted (``commerce_event,screen_view``); mParticle sends no topic."""
        try:
            events = _load_batch(delivery.body).get("events")
        except PayloadError:
            return None
        if not isinstance(events, list):
            return None
        kinds = sorted(
            {e["event_type"] for e in events if isinstance(e, dict) and isinstance(e.get("event_type"), str)}
        )
        return ",".join(kinds) if kinds else "no_events"

    def delivery_id(self, delivery: Delivery) -> str | None:
        """``batch_id`` (added to outgoing batches "for ... de-duping"), else the sender's
        ``source_request_id``; neither → the intake dedupes on the body hash."""
        try:
            batch = _load_batch(delivery.body)
        except PayloadError:
            return None
        for key in ("batch_id", "source_request_id"):
            value = batch.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
        return None

    def parse(self, delivery: Delivery) -> list[Record]:
        return self._parser.parse(_load_batch(delivery.body))

    def api_client(self, **options: Any) -> PlatformClient:
        raise InvalidInput(NO_BACKFILL)

    def backfill(self, client: PlatformClient) -> Iterator[Record]:
        """mParticle has no API that hands past events to an output; its replay does."""
        raise InvalidInput(NO_BACKFILL)
