"""Shopify: webhook verification and parsing (``sign`` produces genuine signatures for tests)."""

from adapters.shopify.adapter import ShopifyAdapter, sign

__all__ = ["ShopifyAdapter", "sign"]
