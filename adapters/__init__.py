"""Platform adapters and their registry: one module per platform, all with one interface."""

from __future__ import annotations

from adapters.base import Adapter
from adapters.shopify import ShopifyAdapter

#: The registry. Adding a platform: one new package, one line here, one test inheriting the contract.
ADAPTERS: dict[str, type[Adapter]] = {
    ShopifyAdapter.platform: ShopifyAdapter,
}


def get_adapter(platform: str) -> Adapter:
    try:
        return ADAPTERS[platform]()
    except KeyError:
        raise KeyError(f"no adapter for platform {platform!r}; known: {', '.join(sorted(ADAPTERS))}") from None
