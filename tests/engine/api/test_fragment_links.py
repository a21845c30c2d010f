"""Product links in server-rendered fragments are absolute and on the store's address."""

import re

import pytest

from engine.api.widgets_html import product_link
from engine.errors import InvalidInput


def test_an_absolute_catalog_url_is_used_as_it_is():
    assert product_link("a", {"url": "https://shop.example/p/a"}, None) == "https://shop.example/p/a"


def test_a_page_path_goes_on_the_templates_store_address():
    link = product_link("a", {"url": "/products/towel"}, "https://shop.example/item/{itemId}")
    assert link == "https://shop.example/products/towel"


def test_without_a_url_the_template_names_the_page():
    assert product_link("a b", {}, "https://shop.example/item/{itemId}") == "https://shop.example/item/a%20b"


@pytest.mark.parametrize("metadata", [{}, {"url": "/products/towel"}])
def test_a_page_path_or_nothing_without_a_template_is_refused_not_put_on_shelfwises_host(metadata):
    with pytest.raises(InvalidInput, match=re.escape("productUrl=https://shop.example/products/{itemId}")):
        product_link("a", metadata, None)
