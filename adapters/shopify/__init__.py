"""Shopify: webhook verification and parsing, Admin API back-fill (``sign`` makes genuine test signatures)."""

from adapters.shopify.adapter import ShopifyAdapter, sign

__all__ = ["ShopifyAdapter", "sign"]
