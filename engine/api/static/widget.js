/*! Shelfwise widget: recommendation carousels for any store page. No dependencies, no build step.
 *
 * <script src="https://recs.example.com/widget.js" defer
 *         data-shelfwise-key="pk_..."               public key (read-only, bound to this site's origin)
 *         data-shelfwise-tracking-id="..."          event tracker, for click events
 *         data-shelfwise-user-id="..."              optional: the signed-in shopper (else an anonymous id)
 *         data-shelfwise-endpoint="https://...">    optional: the API origin (default: this script's origin)
 * </script>
 * <div data-shelfwise-widget data-recommender="CAMPAIGN" data-item-id="..." data-num-results="8"
 *      data-title="..." data-product-url="/products/{itemId}" data-currency="USD"
 *      data-layout="carousel|grid" data-type="campaign|recommender"
 *      data-widget-name="pdp-also-bought" data-placement="product-page"></div>
 *
 * Cards seen (at least half visible for a second, IntersectionObserver) go back as "impression" events and
 * clicks as "click" events, each with the list's recommendationId and properties {widget,
 * campaign|recommender, placement}: exploration learns from what was shown and ignored, and
 * attribution (GET /v1/metrics, `shelfwise report`) credits what the widget earned.
 *
 * Every widget element gets data-shelfwise-state (loading | ready | empty | error) and a
 * "shelfwise:rendered" event ({detail: {count, recommendationId}}) after each attempt. When there is
 * nothing to show, or the API cannot be reached, the element stays empty and hidden.
 * window.Shelfwise.refresh() renders every widget on the page again.
 */
(function () {
  "use strict";

  if (window.Shelfwise) return; // included twice: the first copy is in charge

  const script = document.currentScript || document.querySelector("script[data-shelfwise-key]");
  const options = (script && script.dataset) || {};
  const endpoint = (options.shelfwiseEndpoint || originOf(script && script.src) || location.origin)
    .replace(/\/+$/, "");
  const apiKey = options.shelfwiseKey || "";
  const trackingId = options.shelfwiseTrackingId || "";
  const METADATA = ["TITLE", "PRICE", "CATEGORY_L1", "IMAGE_URL", "URL"];
  const TIMEOUT_MS = 8000;
  const generations = new WeakMap(); // element -> number of its latest request (older answers are dropped)
  const bound = new WeakSet(); // elements whose click listeners are in place
  const formatters = {};
  const observers = new WeakMap(); // element -> IntersectionObserver of its current cards
  const MAX_EVENTS = 10; // PutEvents takes at most 10 events a request
  // Seen = at least half the card in view for a second (the IAB viewability rule), so cards that
  // flash past while the page lays out or the shopper scrolls by do not count as ignored.
  const DWELL_MS = 1000;
  const pending = []; // impressions seen, waiting for the next batch
  let flushTimer = 0;
  let userId = options.shelfwiseUserId || "";
  let sessionId = "";

  const STYLES = `
[data-shelfwise-widget][hidden]{display:none!important}
.shelfwise{--sw-accent:var(--shelfwise-accent,#2f5bd3);--sw-radius:var(--shelfwise-radius,12px);
  font-family:var(--shelfwise-font,inherit);color:var(--shelfwise-text,inherit);margin:var(--shelfwise-margin,2rem 0)}
.shelfwise__title{font-size:var(--shelfwise-title-size,1.25rem);font-weight:700;margin:0 0 .75rem;line-height:1.3}
.shelfwise__list{list-style:none;margin:0;padding:4px;display:grid;gap:var(--shelfwise-gap,1rem)}
.shelfwise--carousel .shelfwise__list{grid-auto-flow:column;grid-auto-columns:var(--shelfwise-card-width,11.5rem);
  overflow-x:auto;scroll-snap-type:x mandatory;scroll-padding:4px;overscroll-behavior-x:contain;padding-bottom:.75rem}
.shelfwise--grid .shelfwise__list{grid-template-columns:repeat(auto-fill,minmax(var(--shelfwise-card-width,11.5rem),1fr))}
.shelfwise__item{margin:0;min-width:0;scroll-snap-align:start}
.shelfwise__card{display:flex;flex-direction:column;gap:.4rem;box-sizing:border-box;height:100%;padding:.75rem;
  border:1px solid var(--shelfwise-border,#e3e5ea);border-radius:var(--sw-radius);background:var(--shelfwise-card-bg,#fff);
  color:inherit;text-decoration:none;transition:box-shadow .15s,transform .15s}
.shelfwise__card:hover{box-shadow:0 6px 18px rgba(20,30,60,.1);transform:translateY(-2px)}
.shelfwise__card:focus{outline:3px solid var(--sw-accent);outline-offset:2px}
.shelfwise__card:focus:not(:focus-visible){outline:none}
.shelfwise__media{display:grid;place-items:center;aspect-ratio:4/3;overflow:hidden;border-radius:calc(var(--sw-radius) - 4px);
  background:var(--shelfwise-media-bg,#eef1f8);color:var(--sw-accent);font-size:2rem;font-weight:700}
.shelfwise__media img{width:100%;height:100%;object-fit:cover}
.shelfwise__category{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:var(--shelfwise-muted,#6b7280)}
.shelfwise__name{font-weight:600;line-height:1.3;overflow:hidden;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical}
.shelfwise__price{margin-top:auto;font-weight:700;color:var(--shelfwise-price,var(--sw-accent))}
@media (prefers-reduced-motion:reduce){.shelfwise__card{transition:none}.shelfwise__card:hover{transform:none}}`;

  function originOf(url) {
    try {
      return url ? new URL(url, location.href).origin : "";
    } catch (_) {
      return "";
    }
  }

  function warn(message, detail) {
    if (window.console && console.warn) console.warn("[shelfwise] " + message, detail === undefined ? "" : detail);
  }

  function randomId() {
    const c = window.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    if (c && c.getRandomValues) {
      return Array.from(c.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  /** An id kept in local/sessionStorage; storage can be blocked (privacy modes), so fall back to memory. */
  function storedId(storageName, key, prefix) {
    try {
      const storage = window[storageName];
      let value = storage.getItem(key);
      if (!value) {
        value = prefix + randomId();
        storage.setItem(key, value);
      }
      return value;
    } catch (_) {
      return prefix + randomId();
    }
  }

  function identity() {
    if (!userId) userId = storedId("localStorage", "shelfwise.anonymousId", "anon-");
    if (!sessionId) sessionId = storedId("sessionStorage", "shelfwise.sessionId", "s-");
    return { userId, sessionId };
  }

  function injectStyles() {
    if (document.getElementById("shelfwise-styles")) return;
    const style = document.createElement("style");
    style.id = "shelfwise-styles";
    style.textContent = STYLES;
    // First in <head>, so the store's own stylesheets win over these defaults.
    const head = document.head || document.documentElement;
    head.insertBefore(style, head.firstChild);
  }

  function formatPrice(value, currency) {
    const amount = typeof value === "number" ? value : parseFloat(value);
    if (value === null || value === undefined || value === "" || !isFinite(amount)) return "";
    const locale = document.documentElement.lang || undefined;
    const cacheKey = currency + "|" + locale;
    if (!(cacheKey in formatters)) formatters[cacheKey] = currencyFormat(locale, currency);
    const format = formatters[cacheKey];
    return format ? format.format(amount) : amount.toFixed(2) + " " + currency;
  }

  /** The page's language, else the browser's; null for a currency code Intl does not know. */
  function currencyFormat(locale, currency) {
    for (const tag of [locale, undefined]) {
      try {
        return new Intl.NumberFormat(tag, { style: "currency", currency });
      } catch (_) {
        /* a malformed lang attribute or an unknown currency: try the next */
      }
    }
    return null;
  }

  /** Only http(s) links from catalog metadata; anything else (javascript:, data:) uses the template. */
  function productUrl(itemId, metadata, template) {
    if (metadata.url) {
      try {
        const url = new URL(String(metadata.url), location.href);
        if (url.protocol === "http:" || url.protocol === "https:") return url.href;
      } catch (_) {
        /* fall through to the template */
      }
    }
    return template.split("{itemId}").join(encodeURIComponent(itemId));
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function card(entry, settings) {
    const metadata = entry.metadata || {};
    const name = String(metadata.title || entry.itemId);
    const item = el("li", "shelfwise__item");
    item.dataset.itemId = entry.itemId;
    const link = el("a", "shelfwise__card");
    link.href = productUrl(entry.itemId, metadata, settings.productUrl);

    const media = el("span", "shelfwise__media");
    media.setAttribute("aria-hidden", "true");
    if (metadata.imageUrl) {
      const img = el("img");
      img.src = String(metadata.imageUrl);
      img.alt = "";
      img.loading = "lazy";
      media.appendChild(img);
    } else {
      media.textContent = name.trim().charAt(0).toUpperCase();
    }
    link.appendChild(media);
    if (metadata.categoryL1) link.appendChild(el("span", "shelfwise__category", String(metadata.categoryL1)));
    link.appendChild(el("span", "shelfwise__name", name));
    const price = formatPrice(metadata.price, settings.currency);
    if (price) link.appendChild(el("span", "shelfwise__price", price));
    item.appendChild(link);
    return item;
  }

  function widgetSettings(node) {
    const data = node.dataset;
    const n = parseInt(data.numResults, 10);
    const kind = data.type === "recommender" ? "recommender" : "campaign";
    const properties = { widget: data.widgetName || data.recommender || "" };
    properties[kind] = data.recommender || "";
    if (data.placement) properties.placement = data.placement;
    return {
      kind,
      properties,
      campaign: data.recommender || "",
      itemId: data.itemId || "",
      numResults: Math.min(Math.max(isFinite(n) ? n : 8, 1), 50),
      title: data.title || "Recommended for you",
      productUrl: data.productUrl || "/products/{itemId}",
      currency: (data.currency || "USD").toUpperCase(),
      layout: data.layout === "grid" ? "grid" : "carousel",
    };
  }

  async function fetchRecommendations(settings) {
    const body = {
      [settings.kind]: settings.campaign,
      userId: identity().userId,
      numResults: settings.numResults,
      metadataColumns: { ITEMS: METADATA },
    };
    if (settings.itemId) body.itemId = settings.itemId;
    const controller = window.AbortController ? new AbortController() : null;
    const timer = controller && setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(endpoint + "/v1/recommendations", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { Authorization: "Bearer " + apiKey, "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: controller ? controller.signal : undefined,
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      return await response.json();
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  function finish(node, state, count, recommendationId) {
    node.setAttribute("data-shelfwise-state", state);
    node.removeAttribute("aria-busy");
    node.dispatchEvent(
      new CustomEvent("shelfwise:rendered", { bubbles: true, detail: { count, recommendationId, state } })
    );
  }

  async function render(node) {
    const generation = (generations.get(node) || 0) + 1;
    generations.set(node, generation);
    const settings = widgetSettings(node);
    node.setAttribute("data-shelfwise-state", "loading");
    node.setAttribute("aria-busy", "true");
    if (!node.hasChildNodes()) node.hidden = true; // nothing to show until there is something

    let answer = null;
    let failed = false;
    if (!apiKey || !settings.campaign) {
      warn("missing " + (apiKey ? "data-recommender on a widget" : "data-shelfwise-key on the script tag"));
      failed = true;
    } else {
      try {
        answer = await fetchRecommendations(settings);
      } catch (error) {
        warn("no recommendations for '" + settings.campaign + "'", error && error.message);
        failed = true;
      }
    }
    if (generations.get(node) !== generation) return; // a newer refresh owns this element now

    const items = answer && Array.isArray(answer.itemList) ? answer.itemList.filter((e) => e && e.itemId) : [];
    if (!items.length) {
      node.replaceChildren();
      node.hidden = true;
      finish(node, failed ? "error" : "empty", 0, (answer && answer.recommendationId) || null);
      return;
    }

    const section = el("section", "shelfwise shelfwise--" + settings.layout);
    section.setAttribute("aria-label", settings.title);
    section.appendChild(el("h2", "shelfwise__title", settings.title));
    const list = el("ul", "shelfwise__list");
    list.setAttribute("role", "list"); // keeps list semantics in Safari despite list-style:none
    list.dataset.recommendationId = answer.recommendationId || "";
    for (const entry of items) list.appendChild(card(entry, settings));
    section.appendChild(list);
    list.dataset.properties = JSON.stringify(settings.properties);
    node.replaceChildren(section);
    node.hidden = false;
    watchImpressions(node, list);
    finish(node, "ready", items.length, answer.recommendationId || null);
  }

  function sendEvents(events) {
    if (!trackingId || !apiKey || !events.length) return;
    const who = identity();
    const body = { trackingId, userId: who.userId, sessionId: who.sessionId, eventList: events };
    try {
      fetch(endpoint + "/v1/events", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        keepalive: true, // survives the navigation a click starts, and the page being closed
        headers: { Authorization: "Bearer " + apiKey, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }).catch((error) => warn("event not recorded", error && error.message));
    } catch (error) {
      warn("event not recorded", error && error.message);
    }
  }

  function itemEvent(eventType, item) {
    const list = item.closest("[data-recommendation-id]");
    const event = { eventType, itemId: item.dataset.itemId, sentAt: Date.now() / 1000 };
    if (list && list.dataset.recommendationId) event.recommendationId = list.dataset.recommendationId;
    try {
      event.properties = JSON.parse(list.dataset.properties);
    } catch (_) {
      /* no properties: the event still counts for exploration */
    }
    return event;
  }

  /** Impressions of one list go in one request when possible: up to 10 events, each naming the
   * items seen together (the `impression` list), sent shortly after the cards come into view. */
  function flushImpressions() {
    flushTimer = 0;
    while (pending.length) {
      const batch = pending.splice(0, MAX_EVENTS);
      const rid = batch[0].recommendationId;
      const same = batch.filter((e) => e.recommendationId === rid);
      pending.unshift(...batch.filter((e) => e.recommendationId !== rid));
      const seenTogether = same.map((e) => e.itemId).slice(0, 25);
      for (const e of same) e.impression = seenTogether;
      sendEvents(same);
    }
  }

  function watchImpressions(node, list) {
    const previous = observers.get(node);
    if (previous) previous.disconnect();
    if (!trackingId || !window.IntersectionObserver) return;
    const timers = new Map(); // card -> timer of its dwell, cancelled if it leaves the view first
    const observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          const item = entry.target;
          if (!entry.isIntersecting) {
            clearTimeout(timers.get(item));
            timers.delete(item);
          } else if (!timers.has(item)) {
            timers.set(
              item,
              setTimeout(() => {
                observer.unobserve(item); // once per item per rendered list
                if (!item.isConnected) return;
                pending.push(itemEvent("impression", item));
                if (!flushTimer) flushTimer = setTimeout(flushImpressions, 200);
              }, DWELL_MS)
            );
          }
        }
      },
      { threshold: 0.5 }
    );
    for (const item of list.children) observer.observe(item);
    observers.set(node, observer);
  }

  /** One listener per widget element; the navigation itself is left alone. */
  function onCardActivated(event) {
    if (event.type === "auxclick" && event.button !== 1) return; // middle click opens a tab: a click too
    const link = event.target.closest && event.target.closest("a.shelfwise__card");
    const item = link && link.closest("li[data-item-id]");
    if (!item || !event.currentTarget.contains(item)) return;
    sendEvents([itemEvent("click", item)]);
  }

  function refresh() {
    injectStyles();
    const nodes = document.querySelectorAll("[data-shelfwise-widget]");
    for (const node of nodes) {
      if (!bound.has(node)) {
        bound.add(node);
        node.addEventListener("click", onCardActivated);
        node.addEventListener("auxclick", onCardActivated);
      }
      render(node).catch((error) => warn("render failed", error && error.message));
    }
    return nodes.length;
  }

  window.Shelfwise = { refresh, version: "2" };
  // Impressions still waiting when the shopper leaves go out with keepalive.
  addEventListener("pagehide", flushImpressions);

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", refresh, { once: true });
  } else {
    refresh();
  }
})();
