"""Platform adapters and their registry: one module per platform, all with one interface."""

from __future__ import annotations

from adapters.base import Adapter
from adapters.bigcommerce import BigCommerceAdapter
from adapters.magento import MagentoAdapter
from adapters.mparticle import MParticleAdapter
from adapters.segment import SegmentAdapter
from adapters.shopify import ShopifyAdapter
from adapters.woocommerce import WooCommerceAdapter

#: The registry. Adding a platform: one new package, one line here, one test inheriting the contract.
ADAPTERS: dict[str, type[Adapter]] = {
    ShopifyAdapter.platform: ShopifyAdapter,
    BigCommerceAdapter.platform: BigCommerceAdapter,
    SegmentAdapter.platform: SegmentAdapter,
    MParticleAdapter.platform: MParticleAdapter,
    WooCommerceAdapter.platform: WooCommerceAdapter,
    MagentoAdapter.platform: MagentoAdapter,
}


def get_adapter(platform: str) -> Adapter:
    try:
        return ADAPTERS[platform]()
    except KeyError:
        raise KeyError(f"no adapter for platform {platform!r}; known: {', '.join(sorted(ADAPTERS))}") from None
