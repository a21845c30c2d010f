"""Where a Magento store's product pages and pictures are, for widgets and e-mail fragments.

A product names its page by ``url_key`` (a custom attribute in REST, flat in observer data); the
storefront serves it at ``<store URL>/<url_key><suffix>``, the suffix being the store's "Product
URL Suffix" setting (``.html`` unless changed, Stores > Configuration > Catalog > Catalog > Search
Engine Optimization). Pictures are paths such as ``/m/b/mb01-blue-0.jpg`` under the media base
URL, ``<store URL>/media/catalog/product``: the ``image`` role (the product page's main picture),
else the gallery entry carrying that role, else the first enabled gallery entry by position.

Connection settings (``--set KEY=VALUE``): ``store_url`` (default: the REST ``base_url`` without its
``/rest/<store code>`` tail), ``url_suffix`` (default ``.html``; empty for none) and ``media_url``
(default ``<store_url>/media/catalog/product``; a CDN when media is served from one). A product
"Not Visible Individually" (a configurable's variant) has no page of its own, so no URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from engine.errors import InvalidInput

DEFAULT_URL_SUFFIX = ".html"
MEDIA_PATH = "/media/catalog/product"
#: What Magento writes in an image role that has no picture.
NO_SELECTION = "no_selection"
NOT_VISIBLE_INDIVIDUALLY = (1, "1")
_REST_TAIL = re.compile(r"/rest(/[^/]*)?/?$")


def _http_url(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"Magento {name} {value!r} is not an http(s) URL (e.g. https://shop.example)")
    return text


@dataclass(frozen=True)
class Storefront:
    #: The store's address without a trailing slash; None leaves URLs as paths on the store's site.
    base_url: str | None = None
    url_suffix: str = DEFAULT_URL_SUFFIX
    media_url: str = MEDIA_PATH

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Storefront:
        """The storefront of a connection; a malformed address is refused (at connect time)."""
        base = _http_url(config.get("store_url"), "store_url")
        if base is None:
            rest = _http_url(config.get("base_url"), "base_url")
            base = _REST_TAIL.sub("", rest) if rest else None
        suffix = config.get("url_suffix")
        media = _http_url(config.get("media_url"), "media_url") or f"{base or ''}{MEDIA_PATH}"
        return cls(base, DEFAULT_URL_SUFFIX if suffix is None else str(suffix).strip(), media)

    def product_url(self, flat: Mapping[str, Any]) -> str | None:
        url_key = flat.get("url_key")
        if not isinstance(url_key, str) or not url_key.strip():
            return None
        if flat.get("visibility") in NOT_VISIBLE_INDIVIDUALLY:
            return None
        path = f"/{quote(url_key.strip().strip('/'))}{self.url_suffix}"
        return f"{self.base_url}{path}" if self.base_url else path

    def image_url(self, flat: Mapping[str, Any]) -> str | None:
        path = main_image_path(flat)
        return f"{self.media_url}/{quote(path.lstrip('/'))}" if path else None


def _path(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() and value.strip() != NO_SELECTION else None


def main_image_path(flat: Mapping[str, Any]) -> str | None:
    """The main picture's path: the ``image`` role, else the gallery, else the smaller roles."""
    role = _path(flat.get("image"))
    if role:
        return role
    entries = [
        e
        for e in flat.get("media_gallery_entries") or []
        if isinstance(e, dict)
        and not e.get("disabled")
        and e.get("media_type", "image") == "image"
        and _path(e.get("file"))
    ]

    def rank(entry: dict[str, Any]) -> tuple[bool, float]:
        position = entry.get("position")
        number = position if isinstance(position, int | float) and not isinstance(position, bool) else float("inf")
        return ("image" not in (entry.get("types") or []), number)

    if entries:
        return _path(min(entries, key=rank).get("file"))
    return _path(flat.get("small_image")) or _path(flat.get("thumbnail"))
