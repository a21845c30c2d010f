"""Widget snippets per platform: they render, their markup is balanced, their settings parse."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from adapters import ADAPTERS
from adapters.base import WidgetContext
from adapters.snippets import PLATFORM_FILES, SnippetError, render, render_files
from engine.cli import main
from engine.storage import Store

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
CTX = WidgetContext(
    base_url="https://recs.example.com/",
    public_key="pk_abc.def",
    tracking_id="trk-123",
    recommender="customers-also-bought",
    extra={"layout": "grid", "title": 'Pairs "well" & <fits>', "num_results": 6, "widget_name": "pdp-also"},
)


class StrictHTML(HTMLParser):
    """Fails on a closing tag that does not match the open one, and on tags left open."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:] or 'nothing'}"
        self.stack.pop()

    def check(self, markup: str) -> list[tuple[str, dict]]:
        self.feed(markup)
        self.close()
        assert not self.stack, f"left open: {self.stack}"
        return self.tags


def strip(markup: str, *patterns: str) -> str:
    for pattern in patterns:
        markup = re.sub(pattern, " ", markup, flags=re.S)
    return markup


def php_code(text: str) -> str:
    """The PHP source without its strings and comments (one left open leaves its quote behind)."""
    token = re.compile(r"/\*.*?\*/|//[^\n]*|#[^\n]*|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", re.S)
    return token.sub(" ", text)


def widget_div(tags) -> dict:
    found = [attrs for tag, attrs in tags if tag == "div" and "data-shelfwise-widget" in attrs]
    assert len(found) == 1
    return found[0]


def script_tag(tags) -> dict:
    (script,) = [attrs for tag, attrs in tags if tag == "script"]
    return script


def test_every_store_platform_adapter_renders_its_snippet():
    for platform in PLATFORM_FILES:
        text = ADAPTERS[platform]().render_widget(CTX)
        assert text == render(platform, CTX)
        files = render_files(platform, CTX)
        assert all(f"==> {path} <==" in text for path in files) if len(files) > 1 else text in files.values()
        assert "[[" not in text and "pk_abc.def" in text


def test_shopify_block_is_balanced_liquid_with_a_valid_schema():
    files = render_files("shopify", CTX)
    assert tomllib.loads(files["shopify.extension.toml"])["type"] == "theme"
    text = files["blocks/shelfwise-recommendations.liquid"]
    schema = json.loads(re.search(r"{% schema %}(.*){% endschema %}", text, re.S).group(1))
    defaults = {s["id"]: s.get("default") for s in schema["settings"]}
    assert defaults["recommender"] == "customers-also-bought" and defaults["num_results"] == 6
    assert defaults["title"] == 'Pairs "well" & <fits>' and defaults["layout"] == "grid"
    assert "assign sw_item = product.id" in text and "{{ customer.id }}" in text
    assert "cart.items.first.product_id" in text
    html = strip(text.split("{% schema %}")[0], r"{%-?.*?-?%}", r"{{-?.*?-?}}")
    tags = StrictHTML().check(html)
    assert script_tag(tags)["src"] == "https://recs.example.com/widget.js"
    assert script_tag(tags)["data-shelfwise-tracking-id"] == "trk-123"
    assert widget_div(tags)["data-type"] == "campaign"


def test_bigcommerce_stencil_snippet_is_balanced():
    (text,) = render_files("bigcommerce", CTX).values()
    assert "{{product.id}}" in text and "{{customer.id}}" in text
    tags = StrictHTML().check(strip(text, r"{{!--.*?--}}", r"{{[^}]*}}"))
    div = widget_div(tags)
    assert div["data-title"] == 'Pairs "well" & <fits>'  # escaped in the file, the same text once parsed
    assert 'data-title="Pairs &quot;well&quot; &amp; &lt;fits&gt;"' in text
    assert (div["data-recommender"], div["data-layout"], div["data-num-results"]) == (
        "customers-also-bought",
        "grid",
        "6",
    )
    assert div["data-widget-name"] == "pdp-also"


def test_magento_module_has_valid_xml_and_a_balanced_template():
    files = render_files("magento", CTX)
    layout = ET.fromstring(files["view/frontend/layout/catalog_product_view.xml"])
    arguments = {a.get("name"): a.text for a in layout.iter("argument")}
    assert arguments["shelfwise_title"] == 'Pairs "well" & <fits>'
    assert arguments["shelfwise_recommender"] == "customers-also-bought"
    block = next(layout.iter("block"))
    assert block.get("template") == "Shelfwise_Recommendations::recommendations.phtml"
    assert ET.fromstring(files["etc/module.xml"]).find("module").get("name") == "Shelfwise_Recommendations"
    template = files["view/frontend/templates/recommendations.phtml"]
    tags = StrictHTML().check(strip(template, r"<\?php.*?\?>", r"<\?=.*?\?>"))
    assert widget_div(tags) and script_tag(tags)["data-shelfwise-key"] == "pk_abc.def"


def test_magento_template_gets_its_data_from_a_view_model_injected_by_the_layout():
    files = render_files("magento", CTX)
    layout = ET.fromstring(files["view/frontend/layout/catalog_product_view.xml"])
    block = next(layout.iter("block"))
    assert block.get("class") == "Magento\\Framework\\View\\Element\\Template"
    (view_model,) = [a for a in block.iter("argument") if a.get("name") == "view_model"]
    assert view_model.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "object"
    assert view_model.text == "Shelfwise\\Recommendations\\ViewModel\\Recommendations"

    php = files["ViewModel/Recommendations.php"]
    namespace = re.search(r"^namespace ([\w\\]+);", php, re.M).group(1)
    declared = re.search(r"^class (\w+) implements ArgumentInterface", php, re.M).group(1)
    assert f"{namespace}\\{declared}" == view_model.text
    assert "use Magento\\Framework\\View\\Element\\Block\\ArgumentInterface;" in php
    assert "public function __construct(" in php
    template = files["view/frontend/templates/recommendations.phtml"]
    for source in (php, template):
        assert "ObjectManager" not in source, "dependencies are injected, never fetched from the object manager"
    provided = set(re.findall(r"public function (get\w+)\(\)", php))
    called = set(re.findall(r"\$viewModel->(\w+)\(\)", template))
    assert called and called <= provided, called - provided
    assert "$viewModel = $block->getData('view_model');" in template
    code = php_code(php)
    assert "'" not in code and '"' not in code, "an unterminated string"
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), opening
    if shutil.which("php"):
        for source in (php, template):
            linted = subprocess.run(["php", "-l"], input=source, capture_output=True, text=True)
            assert linted.returncode == 0, linted.stdout + linted.stderr


def test_woocommerce_plugin_defines_the_shortcode_and_escapes_its_output():
    ((path, text),) = render_files("woocommerce", CTX).items()
    assert path == "shelfwise-recommendations.php" and text.startswith("<?php")
    assert "Plugin Name: Shelfwise Recommendations" in text
    assert "add_shortcode('shelfwise'" in text
    for needed in ("get_the_ID()", "WC()->cart", "get_current_user_id()", "esc_attr("):
        assert needed in text
    assert "'title' => 'Pairs \"well\" & <fits>'" in text  # a PHP string, escaped when output by esc_attr
    code = php_code(text)
    assert "'" not in code and '"' not in code, "an unterminated string"
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), opening
    if shutil.which("php"):
        linted = subprocess.run(["php", "-l"], input=text, capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout + linted.stderr


def test_bad_settings_are_refused():
    for bad in [
        WidgetContext("ftp://x", "pk", "t", "r"),
        WidgetContext("https://x", "pk", "t", "bad name */"),
        WidgetContext("https://x", "pk", "t", "r", {"layout": "list"}),
        WidgetContext("https://x", "pk", "t", "r", {"num_results": 0}),
    ]:
        with pytest.raises(SnippetError):
            render("shopify", bad)
    with pytest.raises(SnippetError, match="no widget snippet"):
        render("segment", CTX)


def test_widget_snippet_command_uses_the_groups_keys(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    store = Store(url)
    store.create_dataset_group("shop")
    public_key, _ = store.create_api_key("shop", "public", ["https://shop.example"])
    secret_key, _ = store.create_api_key("shop", "secret")
    store.close()
    base = [
        "widget",
        "snippet",
        "--db",
        url,
        "--dataset-group",
        "shop",
        "--recommender",
        "best-sellers",
        "--base-url",
        "https://recs.example.com",
    ]
    assert main([*base, "--platform", "shopify", "--public-key", public_key]) == 0
    out = capsys.readouterr().out
    assert f'data-shelfwise-key="{public_key}"' in out and "{% schema %}" in out
    tracking_id = Store(url).event_trackers("shop")["storefront"]
    assert f'data-shelfwise-tracking-id="{tracking_id}"' in out

    assert (
        main(
            [*base, "--platform", "magento", "--origin", "https://shop.example", "--out", str(tmp_path / "m"), "--json"]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["createdPublicKey"] is True and len(data["written"]) == 5
    assert (tmp_path / "m/view/frontend/templates/recommendations.phtml").exists()
    assert (tmp_path / "m/ViewModel/Recommendations.php").exists()

    assert main([*base, "--platform", "woocommerce", "--public-key", secret_key]) == 1
    assert "must be a public key" in capsys.readouterr().err
    assert main([*base, "--platform", "bigcommerce"]) == 1
    assert "--origin" in capsys.readouterr().err
