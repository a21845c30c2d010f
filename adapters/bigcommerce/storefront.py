"""Where a BigCommerce store's product pages and pictures are, for widgets and e-mail fragments.

A catalog product names its page relative to the storefront (``custom_url.url``: ``"/towel/"``), so
the store's own address is needed to make it absolute: the connection's ``store_url`` when set
(``--set store_url=https://shop.example``), else the ``secure_url`` of the store's profile
(``GET v2/store``, asked once per run). A token without that scope, or a store that answers
without it, leaves the URL a path on the store's site (which a page on the store still resolves);
that is logged once, not failed: a missing link must never stop a catalog import.

Pictures come with ``include=images``: the one marked ``is_thumbnail`` is the product's main image
(the one BigCommerce shows in listings), else the first by ``sort_order``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from adapters.base import PlatformClient
from adapters.common import store_url_setting as common_store_url_setting
from adapters.http import PlatformApiError

log = logging.getLogger(__name__)

#: The store profile endpoint that names the storefront's address.
STORE_PROFILE = "v2/store"


def store_url_setting(config: Mapping[str, Any]) -> str | None:
    """The connection's ``store_url``, checked: an http(s) address without a trailing slash."""
    return common_store_url_setting(config, "BigCommerce")


class Storefront:
    """The store's address (from the settings, else asked of the API once) and page/image URLs."""

    def __init__(self, client: PlatformClient, config: Mapping[str, Any]) -> None:
        self._client = client
        self._base = store_url_setting(config)
        self._known = self._base is not None

    def base_url(self) -> str | None:
        if not self._known:
            self._known = True
            self._base = self._ask()
        return self._base

    def _ask(self) -> str | None:
        try:
            body = self._client.get(STORE_PROFILE)
        except PlatformApiError as exc:
            log.warning(
                "bigcommerce: the store's address could not be read (%s); product URLs stay relative: "
                "set it with --set store_url=https://YOUR-STORE",
                exc,
            )
            return None
        secure = body.get("secure_url") if isinstance(body, dict) else None
        if isinstance(secure, str) and secure.startswith(("https://", "http://")):
            return secure.strip().rstrip("/")
        log.warning("bigcommerce: %s has no secure_url; product URLs stay relative", STORE_PROFILE)
        return None

    def product_url(self, product: Mapping[str, Any]) -> str | None:
        """``custom_url.url`` on the store's address; None when the product has no page path."""
        custom = product.get("custom_url")
        path = custom.get("url") if isinstance(custom, dict) else None
        if not isinstance(path, str) or not path.strip():
            return None
        path = "/" + path.strip().lstrip("/")
        base = self.base_url()
        return f"{base}{path}" if base else path


def main_image(product: Mapping[str, Any]) -> str | None:
    """The thumbnail-flagged image, else the first by ``sort_order``: its standard-size URL."""
    images = [i for i in product.get("images") or [] if isinstance(i, dict)]
    if not images:
        return None

    def rank(image: dict[str, Any]) -> tuple[bool, float]:
        order = image.get("sort_order")
        number = order if isinstance(order, int | float) and not isinstance(order, bool) else float("inf")
        return (image.get("is_thumbnail") is not True, number)

    for image in sorted(images, key=rank):
        for key in ("url_standard", "url_zoom", "url_thumbnail"):
            url = image.get(key)
            if isinstance(url, str) and url.startswith(("https://", "http://")):
                return url
    return None
