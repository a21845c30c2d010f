"""Per-platform widget snippets: the markup a merchant pastes into their theme.

Each platform's template lives beside this module (``templates/<platform>/...``, package data) and
uses the platform's own variables for the current product, cart and customer; Shelfwise fills in
only what it knows (its URL, the public key, the tracking id, the recommender and defaults), each
value escaped for the language it lands in (HTML attribute, PHP string, XML, JSON inside Liquid's
schema). Placeholders are ``[[name]]`` (a ``[[name_<lang>]]`` suffix picks the escaping), chosen
because no platform language uses that token.
"""

from __future__ import annotations

import json
import re
from html import escape
from importlib.resources import files
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

from adapters.base import WidgetContext

TEMPLATES = files(__package__) / "templates"

#: platform → the files of its snippet, relative to the theme/plugin/module root
PLATFORM_FILES: dict[str, tuple[str, ...]] = {
    "shopify": ("blocks/shelfwise-recommendations.liquid", "shopify.extension.toml"),
    "woocommerce": ("shelfwise-recommendations.php",),
    "magento": (
        "registration.php",
        "etc/module.xml",
        "view/frontend/layout/catalog_product_view.xml",
        "view/frontend/templates/recommendations.phtml",
        "ViewModel/Recommendations.php",
    ),
    "bigcommerce": ("templates/components/shelfwise/recommendations.html",),
}
LAYOUTS = ("carousel", "grid")
#: Campaign, recommender and widget names, as Personalize allows them: safe in every template language.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_PLACEHOLDER = re.compile(r"\[\[([a-z_]+?)(?:_(json|php|xml|attr))?\]\]")


class SnippetError(ValueError):
    """A snippet cannot be rendered from these settings (bad URL, layout, platform)."""


def _escaper(language: str | None):
    if language == "json":
        return lambda v: json.dumps(v)[1:-1]  # inside a JSON string literal
    if language == "php":  # inside a single-quoted PHP string
        return lambda v: v.replace("\\", "\\\\").replace("'", "\\'")
    if language == "xml":
        return xml_escape
    return lambda v: escape(v, quote=True)  # HTML attribute (also "attr")


def values(ctx: WidgetContext) -> dict[str, str]:
    parts = urlsplit(ctx.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SnippetError(f"the Shelfwise base URL must be absolute http(s), not {ctx.base_url!r}")
    for what, name in (("recommender", ctx.recommender), ("widget name", ctx.extra.get("widget_name") or "x")):
        if not NAME.fullmatch(str(name)):
            raise SnippetError(f"the {what} must be 1-63 letters, digits, '.', '_' or '-', not {name!r}")
    layout = str(ctx.extra.get("layout", "carousel"))
    if layout not in LAYOUTS:
        raise SnippetError(f"layout must be one of {', '.join(LAYOUTS)}")
    try:
        num_results = int(ctx.extra.get("num_results", 8))
    except (TypeError, ValueError):
        raise SnippetError("num_results must be a whole number") from None
    if not 1 <= num_results <= 20:
        raise SnippetError("num_results must be between 1 and 20")
    kind = str(ctx.extra.get("type", "campaign"))
    if kind not in ("campaign", "recommender"):
        raise SnippetError("type must be campaign or recommender")
    return {
        "base_url": ctx.base_url.rstrip("/"),
        "public_key": ctx.public_key,
        "tracking_id": ctx.tracking_id,
        "recommender": ctx.recommender,
        "title": str(ctx.extra.get("title") or "Recommended for you"),
        "widget_name": str(ctx.extra.get("widget_name") or ctx.recommender),
        "layout": layout,
        "num_results": str(num_results),
        "type": kind,
    }


def render_files(platform: str, ctx: WidgetContext) -> dict[str, str]:
    """The snippet's files (path → text) for ``platform``."""
    if platform not in PLATFORM_FILES:
        raise SnippetError(f"no widget snippet for {platform!r}: one of {', '.join(PLATFORM_FILES)}")
    known = values(ctx)

    def fill(match: re.Match) -> str:
        name, language = match.group(1), match.group(2)
        if name not in known:
            raise SnippetError(f"template placeholder {match.group(0)} has no value")  # a template bug
        return _escaper(language)(known[name])

    folder = TEMPLATES / platform
    return {
        path: _PLACEHOLDER.sub(fill, folder.joinpath(*path.split("/")).read_text(encoding="utf-8"))
        for path in PLATFORM_FILES[platform]
    }


def render(platform: str, ctx: WidgetContext) -> str:
    """One text: the file itself, or for several files each under a ``==> path <==`` line."""
    rendered = render_files(platform, ctx)
    if len(rendered) == 1:
        return next(iter(rendered.values()))
    return "\n".join(f"==> {path} <==\n{text}" for path, text in rendered.items())
