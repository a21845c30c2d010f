"""BigCommerce: Standard Webhooks verification, thin callbacks completed through the API, back-fill.

``sign`` produces genuine ``webhook-signature`` values for tests and tools.
"""

from adapters.bigcommerce.adapter import BigCommerceAdapter
from adapters.bigcommerce.client import BigCommerceClient, PlatformError
from adapters.bigcommerce.signature import sign

__all__ = ["BigCommerceAdapter", "BigCommerceClient", "PlatformError", "sign"]
