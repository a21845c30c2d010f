"""What an adapter asks the intake to do besides storing records: privacy, lifecycle, resume points.

Engine records (Interaction, Item, User, Erasure, Alias) describe data; these describe requests
that reach beyond one dataset row: erase everything about a shopper (including the raw webhook
bodies that name them), export what is held about a shopper, switch a store off or erase it, and
mark how far a back-fill got. The intake (webhooks/) carries them out; adapters only translate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ForgetShopper:
    """A privacy erasure (Shopify ``customers/redact``, a deleted customer elsewhere).

    ``user_id`` is the shopper's id as the adapter records it (None when the platform sent only an
    e-mail). ``event_id_prefixes`` find the shopper's guest orders (whose interactions carry an
    anonymous id): every user owning an interaction whose event id starts with one is erased too.
    ``identifiers`` (e-mail, phone) are never stored: they only find raw webhook bodies to purge.
    """

    user_id: str | None
    event_id_prefixes: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExportShopper:
    """A data access request (Shopify ``customers/data_request``): write what is held, as JSON."""

    user_id: str | None
    request_id: str | None = None
    event_id_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DisconnectStore:
    """The store left: ``erase=False`` disables the connection (Shopify ``app/uninstalled``: data
    kept, events no longer ingested until it is connected again); ``erase=True`` erases the
    dataset group and everything derived from it (Shopify ``shop/redact``)."""

    erase: bool


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A back-fill resume point: the records yielded before it are stored, then ``state`` is saved."""

    state: dict[str, Any] = field(default_factory=dict)


Action = ForgetShopper | ExportShopper | DisconnectStore

#: What a disabled connection still honours: requests about privacy and the store's own lifecycle.
PRIVACY_ACTIONS = (ForgetShopper, ExportShopper, DisconnectStore)
