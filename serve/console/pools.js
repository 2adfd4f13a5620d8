// Pools: each pool's spot price over time and the spread between the venues of a pair (sampled from
// GET /api/pools while the page is open), and every pool's reserves now.

import { $, h, replace } from "./dom.js";
import { get } from "./api.js";
import { errorView } from "./errors.js";
import { bps, price, shortAmount } from "./format.js";
import { PALETTE, lineChart } from "./charts.js";
import { learnDecimals } from "./tokens.js";

const POLL_MS = 2000;
const KEPT_SAMPLES = 1200;

export class PoolsPanel extends EventTarget {
  constructor() {
    super();
    this.pools = [];
    this.history = new Map(); // poolId -> [[ms, spotPrice]]
    this.spreads = new Map(); // pair -> [[ms, bps]]
    this.pairSelect = $("#chart-pair");
    this.pairSelect.addEventListener("change", () => this.renderCharts());
    this.colors = new Map();
  }

  start() {
    this.poll();
    setInterval(() => this.poll(), POLL_MS);
    window.addEventListener("resize", () => this.renderCharts());
  }

  async poll() {
    const answer = await get("/api/pools");
    if (!answer.ok) {
      replace($("#pools-error"), errorView(answer));
      return;
    }
    replace($("#pools-error"));
    const now = Date.now();
    this.pools = answer.body.pools;
    learnDecimals(this.pools);
    for (const pool of this.pools) {
      const samples = this.history.get(pool.poolId) || [];
      samples.push([now, pool.spotPrice]);
      if (samples.length > KEPT_SAMPLES) samples.shift();
      this.history.set(pool.poolId, samples);
      if (!this.colors.has(pool.poolId)) this.colors.set(pool.poolId, PALETTE[this.colors.size % PALETTE.length]);
    }
    for (const [pairName, venues] of this.byPair()) {
      if (venues.length < 2) continue;
      const spots = venues.map((p) => p.spotPrice);
      const samples = this.spreads.get(pairName) || [];
      samples.push([now, ((Math.max(...spots) - Math.min(...spots)) / Math.min(...spots)) * 10000]);
      if (samples.length > KEPT_SAMPLES) samples.shift();
      this.spreads.set(pairName, samples);
    }
    this.renderPairs();
    this.renderCharts();
    this.renderReserves();
    this.dispatchEvent(new Event("pools"));
  }

  byPair() {
    const pairs = new Map();
    for (const pool of this.pools) pairs.set(pool.pair, [...(pairs.get(pool.pair) || []), pool]);
    return pairs;
  }

  renderPairs() {
    const pairs = [...this.byPair().entries()];
    const chosen = this.pairSelect.value || (pairs.find(([, venues]) => venues.length > 1) || pairs[0] || [""])[0];
    const names = pairs.map(([name, venues]) => `${name}:${venues.length}`).join(",");
    if (names === this.pairNames) return;
    this.pairNames = names;
    replace(this.pairSelect, pairs.map(([name, venues]) =>
      h("option", { value: name, selected: name === chosen }, `${name} (${venues.length} ${venues.length === 1 ? "venue" : "venues"})`)));
  }

  renderCharts() {
    const pairName = this.pairSelect.value;
    const venues = this.byPair().get(pairName) || [];
    const quote = venues[0]?.quote ?? "";
    lineChart($("#price-chart"), {
      series: venues.map((p) => ({ label: p.poolId, color: this.colors.get(p.poolId), points: this.history.get(p.poolId) || [] })),
      yFormat: price,
    });
    $("#price-title").textContent = `spot price, ${quote} per ${venues[0]?.base ?? ""}`;
    const spread = this.spreads.get(pairName) || [];
    lineChart($("#spread-chart"), {
      series: [{ label: `${pairName} spread`, color: "#f7b955", points: spread }],
      yFormat: (v) => bps(v),
      emptyText: venues.length < 2 ? "one venue only: no spread" : "waiting for data",
    });
  }

  renderReserves() {
    replace($("#reserves-body"), this.pools.map((p) => h("tr", { dataset: { poolId: p.poolId } },
      h("td", {}, p.poolId),
      h("td", {}, p.dex),
      h("td", {}, p.kind),
      h("td", {}, p.pair),
      h("td", { class: "num" }, bps(p.feeBps)),
      h("td", { class: "num" }, `${price(p.spotPrice)} ${p.quote}`),
      h("td", { class: "num" }, Object.entries(p.reserves).map(([symbol, amount]) =>
        h("div", { title: amount }, `${shortAmount(amount, 4)} ${symbol}`))),
      h("td", { class: "num" }, p.kind === "dlmm" ? `bin ${p.activeBin} of ${p.bins}` : "—"))));
  }
}
