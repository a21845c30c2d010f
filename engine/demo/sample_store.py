"""A synthetic shop (catalog, shoppers, browsing sessions) for demos, docs and recipe tests.

Real order histories cannot ship with the product, and uniformly random data would make every
recipe look like popularity. So the generator plants structure a recommender can find, and keeps
that structure (the "hidden truth") next to the data so tests can check a model recovers it:

* each shopper has category preferences (a Dirichlet concentrated on 1-3 categories) and a latent
  taste vector, so two shoppers who both like shoes still like *different* shoes;
* each item has a latent vector and a modest popularity, so popularity is a reasonable baseline
  but not the best one;
* items have complements (boots and socks, camera and memory card), and a purchase is often
  followed by a complement in the same session, which gives frequently-bought-together signal.

Everything is drawn from one seeded ``numpy`` generator: no downloads, and the same seed (and
``now``) gives byte-identical output. The heavy lifting (choosing items for every view) is
vectorised per category, so the default store is generated in well under a second.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.records import ADD_TO_CART, PURCHASE, VIEW, Interaction, Item, User

DAY = 86_400.0

#: How far back browsing sessions reach, and how far back the catalog was built.
SESSION_WINDOW_DAYS = 90
CATALOG_AGE_DAYS = 365
#: Items created this recently count as "new" (the cold-start / exploration demo needs some).
NEW_ITEM_DAYS = 7

#: Size of the hidden taste vectors.
LATENT_DIM = 8
#: Weight of the shopper-item taste match and of global popularity in the choice of an item.
#: Popularity is deliberately the smaller term: a personalised recipe should win, but not by magic.
TASTE_WEIGHT = 1.6
POPULARITY_WEIGHT = 0.5

#: Chance that the next view in a session stays in the session's category.
STAY_IN_CATEGORY = 0.85
#: Chance that an add-to-cart ends in a purchase.
CART_TO_PURCHASE = 0.5
#: Chance that a purchase pulls one of the item's complements into the same session, and that the
#: complement, once carted, is bought too.
COMPLEMENT_FOLLOWS = 0.6
COMPLEMENT_PURCHASED = 0.75

MEAN_VIEWS_PER_SESSION = 4.5
MAX_VIEWS_PER_SESSION = 15
MAX_SESSIONS_PER_USER = 20

MEMBERSHIP_STATUSES = ("bronze", "silver", "gold")
MEMBERSHIP_WEIGHTS = (0.6, 0.3, 0.1)
#: Mean number of sessions per membership status: loyal members come back more often.
MEAN_SESSIONS = {"bronze": 3.2, "silver": 3.8, "gold": 5.0}
AGE_GROUPS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_WEIGHTS = (0.15, 0.3, 0.25, 0.18, 0.12)


# --- the catalog's vocabulary ------------------------------------------------------------------


@dataclass(frozen=True)
class _Sub:
    """A sub-category (CATEGORY_L2): the words its product names are built from and its price range."""

    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    price: tuple[float, float]
    detail: str


@dataclass(frozen=True)
class _Category:
    """A top-level category (CATEGORY_L1): brand-like name prefixes, a pitch, sub-categories."""

    brands: tuple[str, ...]
    pitches: tuple[str, ...]
    subs: dict[str, _Sub]
    title: str = "{brand} {adjective} {noun}"
    weight: float = 1.0


_CATALOG: dict[str, _Category] = {
    "shoes": _Category(
        brands=("Trailblazer", "Stridewell", "Summit", "Cobblestone", "Swiftfoot", "Northpeak"),
        pitches=("Built for long days on your feet", "Made to go from trail to town"),
        subs={
            "boots": _Sub(
                ("Waterproof", "Leather", "Insulated", "All-Terrain"),
                ("Hiking Boots", "Chelsea Boots", "Winter Boots"),
                (60, 190),
                "A grippy lugged sole and a padded collar keep every step steady.",
            ),
            "running shoes": _Sub(
                ("Lightweight", "Cushioned", "Breathable", "Responsive"),
                ("Running Shoes", "Trail Runners", "Racing Flats"),
                (45, 160),
                "A springy foam midsole returns energy mile after mile.",
            ),
            "sneakers": _Sub(
                ("Classic", "Canvas", "Suede", "Low-Top"),
                ("Sneakers", "Court Shoes", "Slip-Ons"),
                (30, 120),
                "A clean silhouette that works with jeans or shorts.",
            ),
            "socks": _Sub(
                ("Merino", "Cushioned", "Moisture-Wicking", "Organic Cotton"),
                ("Crew Socks", "Hiking Socks", "Ankle Socks"),
                (6, 25),
                "Reinforced heels and toes outlast ordinary socks.",
            ),
        },
        weight=1.1,
    ),
    "outdoors": _Category(
        brands=("Ridgeline", "Basecamp", "Wildgrove", "Timberline", "Alpenglow"),
        pitches=("Ready for the backcountry", "Packs small and sets up fast"),
        subs={
            "tents": _Sub(
                ("Ultralight", "Freestanding", "Four-Season", "Weatherproof"),
                ("Backpacking Tent", "Dome Tent", "Family Tent"),
                (80, 420),
                "Taped seams and a full-coverage fly keep the rain out.",
            ),
            "sleeping gear": _Sub(
                ("Down", "Synthetic", "Packable", "Insulated"),
                ("Sleeping Bag", "Mummy Bag", "Sleeping Pad"),
                (40, 240),
                "Rated for chilly nights and compresses to the size of a loaf of bread.",
            ),
            "backpacks": _Sub(
                ("Rugged", "Ventilated", "Ripstop", "Lightweight"),
                ("Daypack", "Hiking Backpack", "Hydration Pack"),
                (35, 210),
                "An adjustable harness spreads the load across your hips.",
            ),
            "camp lighting": _Sub(
                ("Rechargeable", "Compact", "Solar", "Waterproof"),
                ("Headlamp", "Camp Lantern", "Flashlight"),
                (12, 70),
                "Several brightness modes and a red night-vision light.",
            ),
        },
    ),
    "kitchen": _Category(
        brands=("Copperleaf", "Hearthstone", "Saltbox", "Maplewood", "Ironvale"),
        pitches=("Designed for everyday cooking", "A kitchen workhorse that lasts"),
        subs={
            "cookware": _Sub(
                ("Cast Iron", "Nonstick", "Stainless Steel", "Enameled"),
                ("Skillet", "Dutch Oven", "Saucepan"),
                (25, 190),
                "Heats evenly and goes straight from stovetop to oven.",
            ),
            "coffee": _Sub(
                ("Programmable", "Manual", "Ceramic", "Compact"),
                ("Coffee Maker", "Pour-Over Kit", "Burr Grinder"),
                (25, 260),
                "Brews a rich, balanced cup without the fuss.",
            ),
            "cutlery": _Sub(
                ("Forged", "Damascus Steel", "Walnut", "Bamboo"),
                ("Chef's Knife", "Knife Set", "Cutting Board"),
                (15, 170),
                "Holds a keen edge and feels balanced in the hand.",
            ),
            "mugs": _Sub(
                ("Stoneware", "Double-Walled", "Insulated", "Speckled"),
                ("Mug Set", "Travel Mug", "Espresso Cups"),
                (10, 45),
                "Dishwasher safe and keeps drinks hot for longer.",
            ),
        },
    ),
    "electronics": _Category(
        brands=("Voltix", "Lumera", "Auralink", "Pixelcraft", "Northwave"),
        pitches=("Smart tech that just works", "Engineered for life on the go"),
        subs={
            "cameras": _Sub(
                ("4K", "Compact", "Weather-Sealed", "Pro"),
                ("Mirrorless Camera", "Action Camera", "Instant Camera"),
                (90, 900),
                "Fast autofocus and a bright sensor capture sharp shots in low light.",
            ),
            "memory cards": _Sub(
                ("High-Speed", "128GB", "256GB", "Rugged"),
                ("Memory Card", "microSD Card", "Card Reader"),
                (8, 65),
                "Fast enough for burst shooting and 4K video.",
            ),
            "headphones": _Sub(
                ("Wireless", "Noise-Cancelling", "Over-Ear", "Sport"),
                ("Headphones", "Earbuds", "Headset"),
                (25, 350),
                "All-day battery life and a comfortable, secure fit.",
            ),
            "chargers": _Sub(
                ("Fast-Charging", "Braided", "Slim", "Dual-Port"),
                ("Power Bank", "USB-C Charger", "Charging Cable"),
                (9, 75),
                "Tops up phones, earbuds and cameras at full speed.",
            ),
        },
        weight=1.2,
    ),
    "books": _Category(
        brands=(
            "The Silent Harbor",
            "Midnight in Lisbon",
            "The Last Orchard",
            "Salt and Stone",
            "A Map of Small Things",
            "The Glass Archive",
            "Winter Light",
            "Echoes of the Tide",
        ),
        pitches=("A reader favourite", "Hard to put down"),
        subs={
            "mystery": _Sub(
                ("A Gripping", "A Chilling", "A Cozy", "A Twisting"),
                ("Mystery", "Thriller", "Detective Novel"),
                (9, 28),
                "Clever clues and a finale nobody sees coming.",
            ),
            "cookbooks": _Sub(
                ("Seasonal", "Plant-Based", "Weeknight", "Slow-Cooked"),
                ("Recipes", "Cookbook", "Baking Book"),
                (15, 45),
                "Over a hundred recipes with step-by-step photos.",
            ),
            "kids books": _Sub(
                ("An Illustrated", "A Bedtime", "A Picture-Book", "A Rhyming"),
                ("Story", "Adventure", "Tale"),
                (6, 22),
                "Bright illustrations for reading aloud together.",
            ),
            "travel guides": _Sub(
                ("The Pocket", "The Complete", "The Essential", "The Hiker's"),
                ("Travel Guide", "Trail Guide", "City Guide"),
                (12, 35),
                "Maps, itineraries and tips from local experts.",
            ),
        },
        title="{brand}: {adjective} {noun}",
        weight=0.9,
    ),
    "beauty": _Category(
        brands=("Lumiere", "Botanica", "Dewdrop", "Saltwater", "Velvetine"),
        pitches=("Clean ingredients, visible results", "A small daily ritual"),
        subs={
            "skincare": _Sub(
                ("Hydrating", "Vitamin C", "Gentle", "Overnight"),
                ("Face Serum", "Moisturizer", "Cleanser"),
                (12, 75),
                "Fragrance-free and suitable for sensitive skin.",
            ),
            "haircare": _Sub(
                ("Nourishing", "Argan Oil", "Volumizing", "Sulfate-Free"),
                ("Shampoo", "Conditioner", "Hair Mask"),
                (8, 40),
                "Leaves hair soft and shiny without weighing it down.",
            ),
            "fragrance": _Sub(
                ("Amber", "Citrus", "Cedarwood", "Lavender"),
                ("Eau de Parfum", "Body Mist", "Rollerball Perfume"),
                (18, 120),
                "A long-lasting scent that is never overpowering.",
            ),
            "beauty tools": _Sub(
                ("Bamboo", "Rose Quartz", "Soft-Bristle", "Vegan"),
                ("Makeup Brush Set", "Facial Roller", "Hair Brush"),
                (8, 60),
                "Thoughtfully made and easy to clean.",
            ),
        },
        weight=0.9,
    ),
    "toys": _Category(
        brands=("Kiddo", "Brightblock", "Puzzleworks", "Tinker & Co", "Little Comet"),
        pitches=("Hours of screen-free fun", "Sparks curiosity and creativity"),
        subs={
            "building sets": _Sub(
                ("Magnetic", "Wooden", "Deluxe", "Starter"),
                ("Building Blocks", "Construction Set", "Marble Run"),
                (15, 120),
                "Pieces fit together easily for little hands.",
            ),
            "puzzles": _Sub(
                ("1000-Piece", "Wooden", "Panoramic", "Glow-in-the-Dark"),
                ("Jigsaw Puzzle", "Puzzle Cube", "Brain Teaser"),
                (10, 40),
                "Thick, precisely cut pieces that click into place.",
            ),
            "plush": _Sub(
                ("Cuddly", "Oversized", "Floppy", "Organic Cotton"),
                ("Teddy Bear", "Plush Fox", "Stuffed Dinosaur"),
                (12, 50),
                "Super soft and machine washable.",
            ),
            "games": _Sub(
                ("Family", "Strategy", "Party", "Cooperative"),
                ("Board Game", "Card Game", "Dice Game"),
                (12, 60),
                "Easy to learn, with plenty of replay value.",
            ),
        },
        weight=0.8,
    ),
    "home decor": _Category(
        brands=("Linen & Loom", "Hearthside", "Stillwater", "Oakhollow", "Marigold"),
        pitches=("Makes any room feel like home", "Quietly beautiful, made to last"),
        subs={
            "candles": _Sub(
                ("Soy", "Sandalwood", "Hand-Poured", "Fig & Cedar"),
                ("Scented Candle", "Candle Trio", "Pillar Candle"),
                (12, 55),
                "A clean, even burn of up to fifty hours.",
            ),
            "textiles": _Sub(
                ("Chunky Knit", "Linen", "Velvet", "Woven"),
                ("Throw Blanket", "Cushion Cover", "Table Runner"),
                (18, 140),
                "Soft to the touch and easy to care for.",
            ),
            "wall art": _Sub(
                ("Framed", "Botanical", "Minimalist", "Vintage"),
                ("Art Print", "Wall Mirror", "Canvas Print"),
                (25, 220),
                "Arrives ready to hang.",
            ),
            "vases": _Sub(
                ("Ceramic", "Hand-Blown Glass", "Terracotta", "Ribbed"),
                ("Vase", "Planter", "Bud Vase"),
                (14, 90),
                "Each piece is slightly unique.",
            ),
        },
    ),
    "apparel": _Category(
        brands=("Northloom", "Harbor & Pine", "Kindred", "Fieldwork", "Coastline"),
        pitches=("Everyday essentials, thoughtfully made", "Layers for every season"),
        subs={
            "jackets": _Sub(
                ("Waterproof", "Quilted", "Fleece-Lined", "Packable"),
                ("Rain Jacket", "Puffer Jacket", "Fleece Jacket"),
                (55, 260),
                "Zippered pockets and an adjustable hood.",
            ),
            "tops": _Sub(
                ("Organic Cotton", "Merino", "Linen", "Relaxed-Fit"),
                ("T-Shirt", "Henley", "Sweater"),
                (18, 110),
                "Pre-washed for a soft feel and no surprises in the wash.",
            ),
            "bottoms": _Sub(
                ("Stretch", "Relaxed", "Slim-Fit", "Ripstop"),
                ("Chinos", "Jeans", "Hiking Pants"),
                (35, 130),
                "A comfortable waistband and room to move.",
            ),
            "base layers": _Sub(
                ("Thermal", "Merino", "Moisture-Wicking", "Seamless"),
                ("Base Layer Top", "Leggings", "Thermal Set"),
                (25, 95),
                "Keeps you warm and dry under any layer.",
            ),
        },
        weight=1.2,
    ),
    "accessories": _Category(
        brands=("Wayfarer", "Satchel & Co", "Brasswood", "Nomad", "Tidewater"),
        pitches=("The finishing touch", "Small details, carefully made"),
        subs={
            "bags": _Sub(
                ("Leather", "Waxed Canvas", "Vegan Leather", "Weekender"),
                ("Tote Bag", "Crossbody Bag", "Duffel Bag"),
                (35, 240),
                "Plenty of pockets and a sturdy strap.",
            ),
            "wallets": _Sub(
                ("Slim", "RFID-Blocking", "Full-Grain Leather", "Zip-Around"),
                ("Wallet", "Card Holder", "Passport Wallet"),
                (15, 90),
                "Holds the essentials without the bulk.",
            ),
            "hats & gloves": _Sub(
                ("Wool", "Cashmere", "Wide-Brim", "Touchscreen"),
                ("Beanie", "Gloves", "Sun Hat"),
                (12, 80),
                "Warm, soft and one size fits most.",
            ),
            "sunglasses & watches": _Sub(
                ("Polarized", "Minimalist", "Titanium", "Tortoiseshell"),
                ("Sunglasses", "Watch", "Watch Strap"),
                (20, 280),
                "Scratch-resistant and made for everyday wear.",
            ),
        },
    ),
}

#: Sub-categories whose items complement each other (both directions). A sub-category paired with
#: itself means "another one of these" (shampoo and conditioner, two board games).
_COMPLEMENT_PAIRS: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = (
    (("shoes", "boots"), ("shoes", "socks")),
    (("shoes", "running shoes"), ("shoes", "socks")),
    (("shoes", "sneakers"), ("shoes", "socks")),
    (("outdoors", "tents"), ("outdoors", "sleeping gear")),
    (("outdoors", "tents"), ("outdoors", "camp lighting")),
    (("outdoors", "backpacks"), ("outdoors", "camp lighting")),
    (("kitchen", "coffee"), ("kitchen", "mugs")),
    (("kitchen", "cookware"), ("kitchen", "cutlery")),
    (("electronics", "cameras"), ("electronics", "memory cards")),
    (("electronics", "headphones"), ("electronics", "chargers")),
    (("books", "cookbooks"), ("kitchen", "cookware")),
    (("books", "travel guides"), ("outdoors", "backpacks")),
    (("books", "mystery"), ("books", "mystery")),
    (("books", "kids books"), ("toys", "plush")),
    (("beauty", "haircare"), ("beauty", "haircare")),
    (("beauty", "skincare"), ("beauty", "beauty tools")),
    (("beauty", "fragrance"), ("home decor", "candles")),
    (("toys", "building sets"), ("toys", "building sets")),
    (("toys", "puzzles"), ("toys", "games")),
    (("toys", "games"), ("toys", "games")),
    (("home decor", "candles"), ("home decor", "vases")),
    (("home decor", "textiles"), ("home decor", "textiles")),
    (("home decor", "wall art"), ("home decor", "vases")),
    (("apparel", "jackets"), ("apparel", "base layers")),
    (("apparel", "tops"), ("apparel", "bottoms")),
    (("accessories", "bags"), ("accessories", "wallets")),
    (("accessories", "sunglasses & watches"), ("accessories", "bags")),
    (("accessories", "hats & gloves"), ("apparel", "jackets")),
)

#: Shop-wide small print, so descriptions within a sub-category are not all identical.
_EXTRAS = (
    "Backed by a two-year warranty.",
    "Ships in plastic-free packaging.",
    "Free returns within 30 days.",
    "A customer favourite since launch.",
    "Designed in-house and tested by our team.",
    "Gift wrapping available at checkout.",
    "Part of our responsibly sourced range.",
)

CATEGORIES: tuple[str, ...] = tuple(_CATALOG)
SUBCATEGORIES: tuple[tuple[str, str], ...] = tuple((c, s) for c, cat in _CATALOG.items() for s in cat.subs)


# --- Personalize dataset schemas ---------------------------------------------------------------

#: Personalize's Avro-style schema for ``interactions.csv``. SESSION_ID is not a Personalize
#: reserved field; Shelfwise keeps it (session-based recipes and frequently-bought-together use it)
#: and Personalize would treat it as unused metadata.
INTERACTIONS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
        {"name": "SESSION_ID", "type": ["null", "string"]},
    ],
    "version": "1.0",
}

#: Personalize's ECOMMERCE-style items schema. TITLE is a plain (neither categorical nor textual)
#: string on purpose: Personalize allows a single textual field (PRODUCT_DESCRIPTION here) and a
#: product name is not a category. Shelfwise keeps such strings as display metadata for widgets;
#: they play no part in training (Personalize would reject or ignore them the same way).
ITEMS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Items",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TITLE", "type": "string"},
        {"name": "PRODUCT_DESCRIPTION", "type": ["null", "string"], "textual": True},
        {"name": "CATEGORY_L1", "type": "string", "categorical": True},
        {"name": "CATEGORY_L2", "type": "string", "categorical": True},
        {"name": "PRICE", "type": "float"},
        {"name": "STOCK", "type": "int"},
        {"name": "CREATION_TIMESTAMP", "type": "long"},
    ],
    "version": "1.0",
}

USERS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Users",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "MEMBERSHIP_STATUS", "type": "string", "categorical": True},
        {"name": "AGE_GROUP", "type": "string", "categorical": True},
    ],
    "version": "1.0",
}


# --- the result --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleTruth:
    """What generated the data. Never shown to a recipe; tests use it to check what models learn.

    Array rows follow the order of ``SampleStore.items`` / ``SampleStore.users``; category columns
    follow ``categories``.
    """

    categories: tuple[str, ...]
    item_factors: np.ndarray  # (n_items, LATENT_DIM)
    item_log_popularity: np.ndarray  # (n_items,)
    user_factors: np.ndarray  # (n_users, LATENT_DIM)
    user_category_preference: np.ndarray  # (n_users, n_categories), rows sum to 1
    complements: dict[str, tuple[str, ...]]  # item id -> its complement item ids
    session_category: dict[str, str]  # session id -> the category the session was about
    now: float
    window_start: float


@dataclass(frozen=True)
class SampleStore:
    """A generated shop: engine records ready for ``Store.ingest``, plus the hidden truth."""

    items: list[Item]
    users: list[User]
    interactions: list[Interaction]
    truth: SampleTruth = field(repr=False)

    def records(self) -> list[Item | User | Interaction]:
        """Items, then users, then interactions: the order an import wants them in."""
        return [*self.items, *self.users, *self.interactions]


# --- generation --------------------------------------------------------------------------------


def generate_sample_store(
    seed: int = 7,
    n_items: int = 300,
    n_users: int = 2000,
    *,
    now: float | None = None,
    mean_sessions: float | None = None,
) -> SampleStore:
    """Generate a seeded synthetic shop whose shoppers have consistent, learnable tastes.

    ``now`` anchors every timestamp (sessions fall in the ``SESSION_WINDOW_DAYS`` before it). It
    defaults to the start of the current UTC day, so "new items" are new relative to today while
    two calls on the same day still give identical output; pass it explicitly for full
    reproducibility. ``mean_sessions`` overrides the per-membership mean number of sessions per
    shopper (about 3.6 on average by default) to make the set bigger or smaller.

    The default (300 items, 2000 shoppers) yields roughly 40 000 interactions: big enough for
    recipes to separate, small enough to import and train in seconds.
    """
    if n_items < len(SUBCATEGORIES):
        raise ValueError(f"n_items must be at least {len(SUBCATEGORIES)} (one per sub-category)")
    if n_users < 1:
        raise ValueError("n_users must be positive")
    if now is None:
        now = float(int(time.time() // DAY) * DAY)
    now = float(int(now))
    window_start = now - SESSION_WINDOW_DAYS * DAY
    rng = np.random.default_rng(seed)

    catalog = _make_catalog(rng, n_items, now)
    users, user_arrays = _make_users(rng, n_users, mean_sessions)
    interactions, session_category = _make_sessions(rng, catalog, user_arrays, now, window_start)

    # Public lists are ordered by id; truth arrays follow that order.
    item_order = np.argsort(catalog.ids)
    items = [catalog.records[i] for i in item_order]
    truth = SampleTruth(
        categories=CATEGORIES,
        item_factors=catalog.factors[item_order],
        item_log_popularity=catalog.log_popularity[item_order],
        user_factors=user_arrays.factors,
        user_category_preference=user_arrays.preference,
        complements={catalog.ids[i]: tuple(catalog.ids[j] for j in catalog.complements[i]) for i in item_order},
        session_category=session_category,
        now=now,
        window_start=window_start,
    )
    return SampleStore(items=items, users=users, interactions=interactions, truth=truth)


@dataclass
class _Catalog:
    """Internal item arrays, indexed so that each category's items are contiguous."""

    ids: list[str]
    records: list[Item]
    category: np.ndarray  # category index per item
    price: np.ndarray
    created: np.ndarray
    factors: np.ndarray
    log_popularity: np.ndarray
    complements: list[np.ndarray]
    category_slices: list[slice]


def _make_catalog(rng: np.random.Generator, n_items: int, now: float) -> _Catalog:
    """Draw products: names, descriptions, prices, stock, creation times, latents, complements."""
    n_subs = len(SUBCATEGORIES)
    sub_weight = np.array([_CATALOG[c].weight / len(_CATALOG[c].subs) for c, _ in SUBCATEGORIES])
    # One item per sub-category first (so every sub-category and category has stock), the rest
    # drawn by category weight; then sort so each category is a contiguous block of indices.
    sub_of_item = np.concatenate(
        [np.arange(n_subs), rng.choice(n_subs, size=n_items - n_subs, p=sub_weight / sub_weight.sum())]
    )
    sub_of_item.sort(kind="stable")
    cat_index = {c: k for k, c in enumerate(CATEGORIES)}
    category = np.array([cat_index[SUBCATEGORIES[s][0]] for s in sub_of_item])
    bounds = np.searchsorted(category, np.arange(len(CATEGORIES) + 1))
    category_slices = [slice(int(bounds[k]), int(bounds[k + 1])) for k in range(len(CATEGORIES))]

    # Creation times: most items predate the session window, some arrive during it, and ~5% in the
    # last week. The first item of each sub-category is always old, so every category always has
    # something a shopper can view.
    first_of_sub = np.searchsorted(sub_of_item, np.arange(n_subs))
    others = np.setdiff1d(np.arange(n_items), first_of_sub)
    shuffled = rng.permutation(others)
    n_new = max(1, round(0.05 * n_items))
    n_recent = round(0.10 * n_items)
    created = now - rng.uniform(SESSION_WINDOW_DAYS, CATALOG_AGE_DAYS, size=n_items) * DAY
    new = shuffled[:n_new]
    recent = shuffled[n_new : n_new + n_recent]
    created[new] = now - rng.uniform(0, NEW_ITEM_DAYS, size=len(new)) * DAY
    created[recent] = now - rng.uniform(NEW_ITEM_DAYS, SESSION_WINDOW_DAYS, size=len(recent)) * DAY
    created = np.floor(created)

    lo = np.array([_sub_spec(s).price[0] for s in range(n_subs)])[sub_of_item]
    hi = np.array([_sub_spec(s).price[1] for s in range(n_subs)])[sub_of_item]
    # Log-uniform within the range, ending in .99 or .49 like real price tags.
    raw = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    price = np.maximum(np.floor(raw) + rng.choice([0.49, 0.99], size=n_items), 0.99).round(2)
    stock = np.where(rng.random(n_items) < 0.08, 0, np.ceil(rng.lognormal(3.0, 1.0, size=n_items)))
    stock = np.minimum(stock, 999).astype(int)

    factors = rng.normal(size=(n_items, LATENT_DIM))
    log_popularity = rng.normal(size=n_items)

    # Public ids are a shuffle of the internal order, so ids say nothing about the category.
    id_numbers = rng.permutation(n_items) + 1
    ids = [f"p{n:04d}" for n in id_numbers]

    used_titles: set[str] = set()
    records = []
    word_draws = rng.integers(0, 1 << 30, size=(n_items, 6))
    for i in range(n_items):
        cat_name, sub_name = SUBCATEGORIES[sub_of_item[i]]
        title, description = _name_product(_CATALOG[cat_name], sub_name, word_draws[i], used_titles)
        records.append(
            Item(
                item_id=ids[i],
                properties={
                    "TITLE": title,
                    "PRODUCT_DESCRIPTION": description,
                    "CATEGORY_L1": cat_name,
                    "CATEGORY_L2": sub_name,
                    "PRICE": float(price[i]),
                    "STOCK": int(stock[i]),
                },
                creation_timestamp=float(created[i]),
            )
        )

    complements = _draw_complements(rng, sub_of_item)
    return _Catalog(
        ids=ids,
        records=records,
        category=category,
        price=price,
        created=created,
        factors=factors,
        log_popularity=log_popularity,
        complements=complements,
        category_slices=category_slices,
    )


def _sub_spec(sub: int) -> _Sub:
    cat_name, sub_name = SUBCATEGORIES[sub]
    return _CATALOG[cat_name].subs[sub_name]


def _name_product(cat: _Category, sub_name: str, draws: np.ndarray, used: set[str]) -> tuple[str, str]:
    """A unique believable title ("Trailblazer Waterproof Hiking Boots") and a short description."""
    sub = cat.subs[sub_name]
    brand = cat.brands[draws[0] % len(cat.brands)]
    adjective = sub.adjectives[draws[1] % len(sub.adjectives)]
    noun = sub.nouns[draws[2] % len(sub.nouns)]
    base = cat.title.format(brand=brand, adjective=adjective, noun=noun)
    title, edition = base, 2
    # Collisions are rare at demo sizes; a bigger catalog gets "Mk 2", "Mk 3"... like real ranges.
    while title in used:
        title = f"{base} Mk {edition}"
        edition += 1
    used.add(title)
    pitch = cat.pitches[draws[3] % len(cat.pitches)]
    partners = _partner_names(cat, sub_name)
    pairing = f" Pairs well with our {partners[draws[5] % len(partners)]}." if partners else ""
    extra = _EXTRAS[draws[4] % len(_EXTRAS)]
    return title, f"{pitch}. {sub.detail} {extra}{pairing}"


def _partner_names(cat: _Category, sub_name: str) -> list[str]:
    own = next(c for c, spec in _CATALOG.items() if spec is cat)
    names = []
    for a, b in _COMPLEMENT_PAIRS:
        for mine, other in ((a, b), (b, a)):
            if mine == (own, sub_name) and other != mine and other[1] not in names:
                names.append(other[1])
    return names


def _draw_complements(rng: np.random.Generator, sub_of_item: np.ndarray) -> list[np.ndarray]:
    """Give each item 1-3 complement items from its partner sub-categories."""
    sub_index = {s: k for k, s in enumerate(SUBCATEGORIES)}
    partners: dict[int, set[int]] = {k: set() for k in range(len(SUBCATEGORIES))}
    for a, b in _COMPLEMENT_PAIRS:
        partners[sub_index[a]].add(sub_index[b])
        partners[sub_index[b]].add(sub_index[a])
    members = {k: np.flatnonzero(sub_of_item == k) for k in range(len(SUBCATEGORIES))}
    counts = rng.integers(1, 4, size=len(sub_of_item))
    result = []
    for i, sub in enumerate(sub_of_item):
        pool = np.concatenate([members[p] for p in sorted(partners[int(sub)])])
        pool = pool[pool != i]
        take = min(int(counts[i]), len(pool))
        result.append(np.sort(rng.choice(pool, size=take, replace=False)) if take else pool[:0])
    return result


@dataclass
class _UserArrays:
    factors: np.ndarray
    preference: np.ndarray
    n_sessions: np.ndarray


def _make_users(rng: np.random.Generator, n_users: int, mean_sessions: float | None) -> tuple[list[User], _UserArrays]:
    """Shoppers with non-personal attributes and hidden tastes."""
    n_cats = len(CATEGORIES)
    membership = rng.choice(len(MEMBERSHIP_STATUSES), size=n_users, p=MEMBERSHIP_WEIGHTS)
    age = rng.choice(len(AGE_GROUPS), size=n_users, p=AGE_WEIGHTS)

    # Category preference: a Dirichlet whose mass sits on 1-3 favourite categories.
    n_favourites = rng.choice([1, 2, 3], size=n_users, p=[0.35, 0.4, 0.25])
    rank = np.argsort(rng.random((n_users, n_cats)), axis=1).argsort(axis=1)
    alpha = np.where(rank < n_favourites[:, None], 4.0, 0.08)
    gamma = rng.gamma(alpha)
    preference = gamma / gamma.sum(axis=1, keepdims=True)

    factors = rng.normal(size=(n_users, LATENT_DIM))
    if mean_sessions is None:
        means = np.array([MEAN_SESSIONS[MEMBERSHIP_STATUSES[m]] for m in membership])
    else:
        means = np.full(n_users, float(mean_sessions))
    n_sessions = np.minimum(rng.geometric(1.0 / np.maximum(means, 1.0)), MAX_SESSIONS_PER_USER)

    users = [
        User(
            user_id=f"u{u + 1:05d}",
            properties={
                "MEMBERSHIP_STATUS": MEMBERSHIP_STATUSES[membership[u]],
                "AGE_GROUP": AGE_GROUPS[age[u]],
            },
        )
        for u in range(n_users)
    ]
    return users, _UserArrays(factors=factors, preference=preference, n_sessions=n_sessions)


def _draw_categories(rng: np.random.Generator, preference: np.ndarray) -> np.ndarray:
    """One category index per row of ``preference`` (inverse-CDF, vectorised)."""
    cumulative = np.cumsum(preference, axis=1)
    r = rng.random(len(preference)) * cumulative[:, -1]
    return np.minimum((r[:, None] > cumulative).sum(axis=1), preference.shape[1] - 1)


def _make_sessions(
    rng: np.random.Generator,
    catalog: _Catalog,
    users: _UserArrays,
    now: float,
    window_start: float,
) -> tuple[list[Interaction], dict[str, str]]:
    """Browse, cart and buy: sessions of views drawn from each shopper's hidden tastes."""
    n_users = len(users.n_sessions)
    # Sessions: start times across the window, ordered by time; ids follow that order. Sessions
    # are at most a few hours long, so ending the starts 12 hours before ``now`` keeps every event
    # inside the window.
    sess_user = np.repeat(np.arange(n_users), users.n_sessions)
    sess_start = np.floor(rng.uniform(window_start, now - DAY / 2, size=len(sess_user)))
    order = np.lexsort((sess_user, sess_start))
    sess_user, sess_start = sess_user[order], sess_start[order]
    n_sess = len(sess_user)
    sess_cat = _draw_categories(rng, users.preference[sess_user])
    session_ids = [f"s{k + 1:06d}" for k in range(n_sess)]

    # Views: the first in each session is in the session's category, later ones mostly stay.
    n_views = np.minimum(rng.geometric(1.0 / MEAN_VIEWS_PER_SESSION, size=n_sess), MAX_VIEWS_PER_SESSION)
    view_sess = np.repeat(np.arange(n_sess), n_views)
    first = np.r_[True, view_sess[1:] != view_sess[:-1]]
    stay = first | (rng.random(len(view_sess)) < STAY_IN_CATEGORY)
    wander = _draw_categories(rng, users.preference[sess_user[view_sess]])
    view_cat = np.where(stay, sess_cat[view_sess], wander)

    # Items: within the view's category, softmax of taste match + popularity, over the items that
    # already existed when the session started. Done per category to keep matrices small.
    view_item = np.empty(len(view_sess), dtype=np.int64)
    view_taste = np.empty(len(view_sess))
    draws = rng.random(len(view_sess))
    scale = 1.0 / np.sqrt(LATENT_DIM)
    for k, block in enumerate(catalog.category_slices):
        rows = np.flatnonzero(view_cat == k)
        if len(rows) == 0:
            continue
        u = sess_user[view_sess[rows]]
        taste = users.factors[u] @ catalog.factors[block].T * scale
        utility = TASTE_WEIGHT * taste + POPULARITY_WEIGHT * catalog.log_popularity[block]
        weight = np.exp(utility - utility.max(axis=1, keepdims=True))
        weight[catalog.created[block][None, :] >= sess_start[view_sess[rows]][:, None]] = 0.0
        cumulative = np.cumsum(weight, axis=1)
        pick = (draws[rows, None] * cumulative[:, -1:] >= cumulative).sum(axis=1)
        pick = np.minimum(pick, weight.shape[1] - 1)
        view_item[rows] = block.start + pick
        view_taste[rows] = taste[np.arange(len(rows)), pick]

    # Carting leans on how well the item matches the shopper (so carts carry extra signal).
    p_cart = 0.03 + 0.3 / (1.0 + np.exp(-(2.0 * view_taste - 1.5)))
    cart_draw = rng.random(len(view_sess))
    buy_draw = rng.random(len(view_sess))
    comp_draw = rng.random((len(view_sess), 3))

    # Assemble event sequences (session, item, type); complements follow purchases. A session
    # carts a given item at most once.
    ev_sess: list[int] = []
    ev_item: list[int] = []
    ev_type: list[int] = []
    carted: set[int] = set()
    current = -1
    created = catalog.created
    for v in range(len(view_sess)):
        s, i = int(view_sess[v]), int(view_item[v])
        if s != current:
            current, carted = s, set()
        ev_sess.append(s)
        ev_item.append(i)
        ev_type.append(0)
        if i in carted or cart_draw[v] >= p_cart[v]:
            continue
        carted.add(i)
        ev_sess.append(s)
        ev_item.append(i)
        ev_type.append(1)
        if buy_draw[v] >= CART_TO_PURCHASE:
            continue
        ev_sess.append(s)
        ev_item.append(i)
        ev_type.append(2)
        comps = catalog.complements[i]
        if len(comps) == 0 or comp_draw[v, 0] >= COMPLEMENT_FOLLOWS:
            continue
        j = int(comps[int(comp_draw[v, 1] * len(comps))])
        if j in carted or created[j] >= sess_start[s]:
            continue
        carted.add(j)
        n_steps = 3 if comp_draw[v, 2] < COMPLEMENT_PURCHASED else 2
        ev_sess.extend([s] * n_steps)
        ev_item.extend([j] * n_steps)
        ev_type.extend([0, 1, 2][:n_steps])

    sess = np.asarray(ev_sess)
    item = np.asarray(ev_item)
    etype = np.asarray(ev_type)
    # Seconds since the previous event of the session: browsing takes a while, carting is quick,
    # checking out takes a minute or two. Gaps are whole seconds >= 2, so times strictly increase.
    gap = np.select(
        [etype == 0, etype == 1],
        [rng.exponential(45.0, len(etype)), rng.exponential(12.0, len(etype))],
        rng.exponential(90.0, len(etype)),
    )
    gap = np.minimum(np.floor(gap) + 2, 600)
    starts = np.r_[True, sess[1:] != sess[:-1]]
    gap[starts] = 0
    total = np.cumsum(gap)
    offset = total - total[np.flatnonzero(starts)][np.cumsum(starts) - 1]
    timestamp = sess_start[sess] + offset

    event_names = (VIEW, ADD_TO_CART, PURCHASE)
    user_ids = [f"u{u + 1:05d}" for u in range(n_users)]
    interactions = [
        Interaction(
            user_id=user_ids[sess_user[s]],
            item_id=catalog.ids[i],
            event_type=event_names[t],
            timestamp=float(ts),
            event_value=float(catalog.price[i]) if t == 2 else None,
            session_id=session_ids[s],
        )
        for s, i, t, ts in zip(sess.tolist(), item.tolist(), etype.tolist(), timestamp.tolist(), strict=True)
    ]
    # Global time order, like an event log; ties keep their generation order.
    interactions = [interactions[k] for k in np.argsort(timestamp, kind="stable")]
    session_category = {session_ids[s]: CATEGORIES[sess_cat[s]] for s in range(n_sess)}
    return interactions, session_category


# --- export ------------------------------------------------------------------------------------


def _header(schema: dict[str, Any]) -> list[str]:
    return [f["name"] for f in schema["fields"]]


def export_personalize_csv(store: SampleStore, directory: str | Path) -> dict[str, Path]:
    """Write the store as Personalize bulk-import files: three CSVs plus their schema JSON.

    The point is that the demo data can go through the same import path a Personalize migrant
    uses (and could even be uploaded to Personalize itself). Returns the written paths keyed
    ``interactions``, ``items``, ``users``, ``interactions-schema``, ``items-schema`` and
    ``users-schema``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def write(name: str, schema: dict[str, Any], rows: list[list[Any]]) -> None:
        path = out / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(_header(schema))
            writer.writerows(rows)
        schema_path = out / f"{name}-schema.json"
        schema_path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        paths[name] = path
        paths[f"{name}-schema"] = schema_path

    write(
        "interactions",
        INTERACTIONS_SCHEMA,
        [
            [
                e.user_id,
                e.item_id,
                int(e.timestamp),
                e.event_type,
                "" if e.event_value is None else repr(e.event_value),
                e.session_id or "",
            ]
            for e in store.interactions
        ],
    )
    write(
        "items",
        ITEMS_SCHEMA,
        [
            [
                it.item_id,
                it.properties["TITLE"],
                it.properties["PRODUCT_DESCRIPTION"],
                it.properties["CATEGORY_L1"],
                it.properties["CATEGORY_L2"],
                f"{it.properties['PRICE']:.2f}",
                it.properties["STOCK"],
                int(it.creation_timestamp or 0),
            ]
            for it in store.items
        ],
    )
    write(
        "users",
        USERS_SCHEMA,
        [[u.user_id, u.properties["MEMBERSHIP_STATUS"], u.properties["AGE_GROUP"]] for u in store.users],
    )
    return paths
