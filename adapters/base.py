"""The one interface every platform adapter implements (see DESIGN.md).

Adapters translate; they never touch the database or an HTTP framework. The webhook intake
hands them a :class:`Delivery` (raw bytes and headers) and stores whatever records they return.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.errors import ShelfwiseError
from engine.records import Record


class SignatureError(ShelfwiseError):
    """The delivery's signature is missing or wrong: answer 401 and ingest nothing."""

    code = "InvalidSignature"
    http_status = 401


class PayloadError(ShelfwiseError):
    """The delivery is authentic but its body cannot be understood."""

    code = "InvalidPayload"
    http_status = 400


class CaseInsensitiveHeaders(dict):
    """Header lookup by any casing (HTTP/2 lower-cases header names)."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        super().__init__({k.lower(): v for k, v in (headers or {}).items()})

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery exactly as received: raw body bytes and headers."""

    body: bytes
    headers: CaseInsensitiveHeaders = field(default_factory=CaseInsensitiveHeaders)
    #: When Shelfwise received it (epoch seconds): the time of events whose payload carries none,
    #: the same on every replay, so parsing stays deterministic.
    received_at: float | None = None

    @classmethod
    def of(cls, body: bytes, headers: Mapping[str, str], received_at: float | None = None) -> Delivery:
        return cls(body=body, headers=CaseInsensitiveHeaders(headers), received_at=received_at)


@dataclass(frozen=True)
class WidgetContext:
    """What a platform snippet needs to render: where Shelfwise is and which key to use."""

    base_url: str
    public_key: str
    tracking_id: str
    recommender: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Acknowledgement:
    """How to answer the platform once a delivery is stored (and verified, unless it is a ping).

    Most platforms take any 2xx; some want a specific body (Adobe Commerce: ``{"op": "success"}``)
    or exactly 200 (WooCommerce's ping). ``body=None``: the intake's own JSON status body.
    """

    status: int = 200
    body: Any = None


@dataclass(frozen=True)
class ApiResponse:
    """One platform API response: the decoded JSON and the headers pagination lives in."""

    data: Any
    headers: CaseInsensitiveHeaders
    url: str


class PlatformClient(ABC):
    """Outbound HTTP to a platform's API (requests underneath; mocked with ``responses`` in tests)."""

    @abstractmethod
    def get(self, path: str, params: dict[str, Any] | None = None) -> Any: ...

    def get_response(self, path: str, params: dict[str, Any] | None = None) -> ApiResponse:
        """Like :meth:`get`, with the headers (Link, X-WP-TotalPages, rate-limit state)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose response headers")


class Adapter(ABC):
    platform: ClassVar[str]

    @classmethod
    def from_connection(cls, config: dict[str, Any]) -> Adapter:
        """Build the adapter for one store's connection (its non-secret settings: shop domain,
        API credentials for platforms whose webhooks must be completed through their API)."""
        return cls()

    @abstractmethod
    def verify(self, delivery: Delivery, secret: str) -> None:
        """Raise :class:`SignatureError` unless the delivery is signed with ``secret``."""

    @abstractmethod
    def topic(self, delivery: Delivery) -> str | None:
        """The platform's name for what happened (for logs and the delivery list)."""

    @abstractmethod
    def delivery_id(self, delivery: Delivery) -> str | None:
        """The idempotency key of the delivery, or None when the platform sends none."""

    @abstractmethod
    def parse(self, delivery: Delivery) -> list[Record]:
        """Translate the delivery into engine records; unknown topics give [] and a log line.

        Privacy and lifecycle requests come back as :mod:`adapters.actions` (ForgetShopper,
        ExportShopper, DisconnectStore), which the intake carries out beside the records.
        """

    def is_ping(self, delivery: Delivery) -> bool:
        """True for an unsigned handshake a platform sends when a hook is created (WooCommerce's
        ``webhook_id=N``): stored and answered, never verified or parsed."""
        return False

    def acknowledgement(self, delivery: Delivery) -> Acknowledgement | None:
        """The answer the platform expects for a delivery that was accepted; None: the default."""
        return None

    def api_client(self, **options: Any) -> PlatformClient:
        """A client for the platform's API, from the connection settings this adapter was built with
        (``options``: what the client takes besides, e.g. an injectable ``sleep`` for tests)."""
        raise NotImplementedError(f"{self.platform} back-fill is not implemented yet")

    def backfill(self, client: PlatformClient) -> Iterator[Record]:
        """Catalog and order history through the platform's API.

        May yield :class:`adapters.actions.Checkpoint` between records: everything before it is
        stored, then its state is saved in the connection settings (key ``backfill``), which
        :meth:`from_connection` hands back on the next run so an interrupted back-fill resumes.
        """
        raise NotImplementedError(f"{self.platform} back-fill is not implemented yet")

    def render_widget(self, ctx: WidgetContext) -> str:
        """A snippet to paste into the platform's theme."""
        raise NotImplementedError(f"{self.platform} widget snippets are not implemented yet")
