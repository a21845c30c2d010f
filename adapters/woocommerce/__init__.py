"""WooCommerce: webhook verification and parsing, the ping, REST v3 back-fill (``sign`` for tests)."""

from adapters.woocommerce.adapter import WooCommerceAdapter, sign

__all__ = ["WooCommerceAdapter", "sign"]
