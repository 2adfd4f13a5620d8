// One order in full: its status path with what each step said, the routing decision, its fill or its error.

import { h } from "./dom.js";
import { events, routingDecision } from "./book.js";
import { bps, clock, price, shortAmount, unitsToTokens } from "./format.js";
import { decimalsOf } from "./tokens.js";

function stepNote(event) {
  const d = event.details || {};
  switch (event.status) {
    case "pending":
      if (d.error) return `retry in ${d.retryInS ?? "?"} s after ${d.error.code}: ${d.error.message}`;
      return d.queued ? "queued" : "";
    case "open":
      return d.waitingFor ? `waiting for ${JSON.stringify(d.waitingFor)}` : "armed";
    case "triggered":
      return [d.priceSeen && `price seen ${d.priceSeen}`, d.poolId && `on ${d.poolId}`, d.highPrice && `high ${d.highPrice}`]
        .filter(Boolean).join(", ");
    case "routing":
      return d.error ? `${d.error.code}: ${d.error.message}` : d.reason || "";
    case "building":
      return [d.expectedOut && `expected ${d.expectedOut}`, d.minOut && `min ${d.minOut}`, d.slippageBps !== undefined && `slippage ${d.slippageBps} bps`]
        .filter(Boolean).join(", ");
    case "submitted":
      return d.txSignature ? `tx ${d.txSignature}` : "";
    case "confirmed":
      return `${d.amountOut ?? ""} out at ${d.executedPrice ?? ""} on ${d.dex ?? ""}`;
    case "failed":
      return d.error ? `${d.error.code}: ${d.error.message}` : "";
    default:
      return d.reason || (d.error ? `${d.error.code}: ${d.error.message}` : "");
  }
}

function timeline(entry) {
  const steps = events(entry);
  if (!steps.length) return h("p", { class: "muted" }, "no status events loaded yet");
  return h("ol", { class: "timeline" }, steps.map((e) =>
    h("li", { class: `step status-${e.status}` },
      h("span", { class: "step-seq" }, `#${e.seq}`),
      h("span", { class: `badge status-${e.status}` }, e.status),
      h("span", { class: "step-time" }, clock(e.timestamp)),
      e.attempt > 1 ? h("span", { class: "muted" }, `attempt ${e.attempt}`) : null,
      h("span", { class: "step-note" }, stepNote(e)))));
}

function quoteOut(quote, tokenOut) {
  if (quote.amountOut === undefined) return "";
  const tokens = unitsToTokens(quote.amountOut, decimalsOf(tokenOut));
  return tokens === null ? `${quote.amountOut} base units` : `${shortAmount(tokens)} ${tokenOut}`;
}

function isChosen(quote, chosen) {
  const ids = (chosen && chosen.poolIds) || [];
  if (chosen && chosen.kind === "two_hop") return quote.poolId === ids.join(" > ");
  return quote.kind !== "two_hop" && ids.includes(quote.poolId);
}

// Every venue's quote, the chosen one marked. `inBaseUnits`: the routing event's amounts (base units).
export function venueTable(quotes, { chosen, tokenOut, inBaseUnits }) {
  return h("table", { class: "venues" },
    h("thead", {}, h("tr", {}, ["venue", "dex", "out", "price", "impact", "fee", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, quotes.map((q) => {
      const won = isChosen(q, chosen);
      const out = q.error ? `${q.error}: ${q.message ?? ""}`
        : inBaseUnits ? quoteOut(q, tokenOut) : `${shortAmount(q.amountOut)} ${tokenOut}`;
      return h("tr", { class: won ? "winner" : "" },
        h("td", {}, q.poolId, q.via ? h("span", { class: "muted" }, ` via ${q.via}`) : null),
        h("td", {}, q.dex),
        h("td", { class: "num" }, out),
        h("td", { class: "num" }, price(q.executionPrice)),
        h("td", { class: "num" }, bps(q.priceImpactBps)),
        h("td", { class: "num" }, q.feeBps !== undefined && q.feeBps !== null ? bps(q.feeBps) : ""),
        h("td", {}, won ? h("span", { class: "badge winner-badge" }, "chosen") : ""));
    })));
}

function decision(entry) {
  const routed = routingDecision(entry);
  if (!routed) return h("p", { class: "muted" }, "not routed yet");
  const chosen = routed.chosen || {};
  return h("div", { class: "decision" },
    venueTable(routed.quotes, { chosen, tokenOut: entry.view?.tokenOut, inBaseUnits: true }),
    routed.reason ? h("p", { class: "reason" }, h("strong", {}, `${chosen.dex ?? ""} ${chosen.kind ?? ""}: `), routed.reason) : null,
    routed.error ? h("p", { class: "reason bad" }, `${routed.error.code}: ${routed.error.message}`) : null,
    (routed.skipped || []).length ? h("p", { class: "muted" }, "skipped: ",
      routed.skipped.map((s) => `${s.poolId} (${s.error})`).join(", ")) : null);
}

function fill(view) {
  if (!view) return null;
  const rows = [
    ["amount out", view.amountOut && `${view.amountOut} ${view.tokenOut}`],
    ["executed price", view.executedPrice && `${view.executedPrice} ${view.tokenOut}/${view.tokenIn}`],
    ["fee", view.fee && `${view.fee} ${view.feeToken ?? ""}`],
    ["price impact", view.priceImpactBps !== null && view.priceImpactBps !== undefined ? bps(view.priceImpactBps) : null],
    ["transaction", view.txSignature],
    ["route", view.route && `${view.route.kind}: ${view.route.legs.map((l) => l.poolId).join(" > ")}`],
    ["waiting for", view.waitingFor && JSON.stringify(view.waitingFor)],
    ["expires", view.expiresAt],
    ["error", view.error && `${view.error.code}: ${view.error.message ?? ""}`],
  ].filter(([, value]) => value);
  return h("dl", { class: "fill" }, rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

export function orderDetail(entry) {
  return h("div", { class: "order-detail" },
    h("section", {}, h("h4", {}, "status path"), timeline(entry)),
    h("section", {}, h("h4", {}, "routing decision"), decision(entry)),
    h("section", {}, h("h4", {}, "order"), fill(entry.view)));
}
