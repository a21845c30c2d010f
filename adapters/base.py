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

    @classmethod
    def of(cls, body: bytes, headers: Mapping[str, str]) -> Delivery:
        return cls(body=body, headers=CaseInsensitiveHeaders(headers))


@dataclass(frozen=True)
class WidgetContext:
    """What a platform snippet needs to render: where Shelfwise is and which key to use."""

    base_url: str
    public_key: str
    tracking_id: str
    recommender: str
    extra: dict[str, Any] = field(default_factory=dict)


class PlatformClient(ABC):
    """Outbound HTTP to a platform's API (requests underneath; mocked with ``responses`` in tests)."""

    @abstractmethod
    def get(self, path: str, params: dict[str, Any] | None = None) -> Any: ...


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
        """Translate the delivery into engine records; unknown topics give [] and a log line."""

    def backfill(self, client: PlatformClient) -> Iterator[Record]:
        """Catalog and order history through the platform's API."""
        raise NotImplementedError(f"{self.platform} back-fill is not implemented yet")

    def render_widget(self, ctx: WidgetContext) -> str:
        """A snippet to paste into the platform's theme."""
        raise NotImplementedError(f"{self.platform} widget snippets are not implemented yet")
