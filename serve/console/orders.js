// The orders table: live rows from the feed, filtered by status and pair; a row opens its detail; Cancel on orders that wait.

import { $, h, replace } from "./dom.js";
import { call, get } from "./api.js";
import { events, isCancellable, pair, routingDecision, status } from "./book.js";
import { clock, price, shortAmount, shortId } from "./format.js";
import { errorView } from "./errors.js";
import { orderDetail } from "./order_detail.js";

const STATUSES = ["pending", "open", "triggered", "routing", "building", "submitted", "confirmed", "failed", "cancelled", "expired"];
const SHOWN = 150;
const COLUMNS = ["time", "order", "type", "sells → buys", "status path", "route", "out", "price", "fee", ""];

export class OrdersTable {
  constructor(book, { onHistoryWanted, onViewWanted }) {
    this.book = book;
    this.onHistoryWanted = onHistoryWanted;
    this.onViewWanted = onViewWanted;
    this.opened = new Set();
    this.rowErrors = new Map();
    this.filters = { status: "", pair: "" };
    this.body = $("#orders-body");
    this.count = $("#orders-count");
    this.statusFilter = $("#filter-status");
    this.pairFilter = $("#filter-pair");
    this.knownPairs = new Set();
    replace($("#orders-head"), h("tr", {}, COLUMNS.map((c) => h("th", {}, c))));
    replace(this.statusFilter, h("option", { value: "" }, "every status"), STATUSES.map((s) => h("option", { value: s }, s)));
    this.statusFilter.addEventListener("change", () => this.filterStatus(this.statusFilter.value));
    this.pairFilter.addEventListener("change", () => {
      this.filters.pair = this.pairFilter.value;
      this.render();
    });
    this.pending = false;
    book.addEventListener("change", () => this.schedule());
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  async filterStatus(value) {
    this.filters.status = value;
    this.render();
    if (!value) return;
    // Older orders in that status too, not only those the page saw.
    const answer = await get(`/api/orders?status=${encodeURIComponent(value)}&limit=100`);
    if (answer.ok) for (const view of answer.body.orders) this.book.putView(view);
  }

  addPairs(pairs) {
    let added = false;
    for (const p of pairs) {
      if (p && !this.knownPairs.has(p)) {
        this.knownPairs.add(p);
        added = true;
      }
    }
    if (!added) return;
    const chosen = this.pairFilter.value;
    replace(this.pairFilter, h("option", { value: "" }, "every pair"),
      [...this.knownPairs].sort().map((p) => h("option", { value: p, selected: p === chosen }, p)));
  }

  visible() {
    const { status: wanted, pair: wantedPair } = this.filters;
    return this.book.list().filter((entry) =>
      (!wanted || status(entry) === wanted) && (!wantedPair || pair(entry) === wantedPair));
  }

  render() {
    const all = this.book.list();
    this.addPairs(all.map(pair));
    const rows = this.visible();
    this.count.textContent = `${rows.length} of ${all.length} orders`;
    replace(this.body, rows.slice(0, SHOWN).map((entry) => this.rows(entry)));
    if (!rows.length) replace(this.body, h("tr", {}, h("td", { colspan: COLUMNS.length, class: "muted empty" }, "no orders yet")));
  }

  rows(entry) {
    const view = entry.view;
    const now = status(entry);
    const routed = routingDecision(entry);
    const row = h("tr", {
      class: `order-row${this.opened.has(entry.id) ? " open" : ""}`,
      dataset: { orderId: entry.id, status: now },
      onclick: (e) => {
        if (!e.target.closest("button")) this.toggle(entry);
      },
    },
    h("td", { class: "num" }, clock(view ? view.createdAt : events(entry)[0]?.timestamp)),
    h("td", { title: entry.id }, h("code", {}, shortId(entry.id))),
    h("td", {}, view ? view.type : ""),
    h("td", { class: "nowrap", title: view?.amountIn, dataset: { cell: "terms" } },
      view ? `${shortAmount(view.amountIn)} ${view.tokenIn} → ${view.tokenOut}` : ""),
    // An order's usual path stays on one line; a long one (retries) wraps.
    h("td", { class: entry.events.size <= 6 ? "path nowrap" : "path" }, pathCell(entry, now)),
    h("td", {}, routeCell(view, routed)),
    h("td", { class: "num", title: view?.amountOut ?? "", dataset: { cell: "out" } },
      view?.amountOut ? `${shortAmount(view.amountOut, 4)} ${view.tokenOut}` : ""),
    h("td", { class: "num", title: view?.executedPrice ?? "", dataset: { cell: "price" } }, price(view?.executedPrice)),
    h("td", { class: "num", title: view?.fee ?? "", dataset: { cell: "fee" } },
      view?.fee ? `${shortAmount(view.fee, 4)} ${view.feeToken ?? ""}` : ""),
    h("td", {}, isCancellable(entry)
      ? h("button", { class: "cancel", type: "button", dataset: { action: "cancel" }, onclick: () => this.cancel(entry) }, "Cancel")
      : null));
    const out = [row];
    const problem = this.rowErrors.get(entry.id);
    if (this.opened.has(entry.id) || problem) {
      out.push(h("tr", { class: "detail-row", dataset: { detailFor: entry.id } },
        h("td", { colspan: COLUMNS.length }, problem ? errorView(problem) : null, this.opened.has(entry.id) ? orderDetail(entry) : null)));
    }
    return out;
  }

  toggle(entry) {
    if (this.opened.has(entry.id)) this.opened.delete(entry.id);
    else {
      this.opened.add(entry.id);
      this.onHistoryWanted(entry.id);
    }
    this.rowErrors.delete(entry.id);
    this.render();
  }

  async cancel(entry) {
    const answer = await call("DELETE", `/api/orders/${entry.id}`);
    if (answer.ok) {
      this.rowErrors.delete(entry.id);
      this.book.putView(answer.body);
    } else {
      this.rowErrors.set(entry.id, answer);
      this.onViewWanted(entry.id);
      this.render();
    }
  }
}

// The statuses seen, in seq order, the current one marked; only the current one when no event is loaded.
function pathCell(entry, now) {
  const seen = events(entry);
  if (!seen.length || seen[seen.length - 1].status !== now) {
    return [seen.map((e) => chip(e.status, `#${e.seq} ${e.timestamp}`, false)), chip(now, "current status", true)];
  }
  return seen.map((e, i) => chip(e.status, `#${e.seq} ${e.timestamp}`, i === seen.length - 1));
}

function chip(name, title, current) {
  return h("span", { class: `chip status-${name}${current ? " current" : ""}`, title }, name);
}

function routeCell(view, routed) {
  const dex = view?.dex || routed?.chosen?.dex;
  if (!dex && !routed) return "";
  const quotes = routed ? routed.quotes.length : 0;
  const why = quotes ? `best of ${quotes} ${quotes === 1 ? "quote" : "quotes"}${routed.reason ? `: ${routed.reason}` : ""}` : "";
  // A route through two pools names both venues ("meteora+raydium"): let the name wrap at the "+".
  return h("span", { title: why, dataset: { quotes: String(quotes) } }, (dex ?? "").split("+").join(" + "));
}
