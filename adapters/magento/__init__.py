"""Magento 2 / Adobe Commerce: Webhooks module calls (signature or token), REST back-fill."""

from adapters.magento.adapter import MagentoAdapter

__all__ = ["MagentoAdapter"]
