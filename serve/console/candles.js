// Candles of one pool from its recorded trades: GET /api/pools/{poolId}/candles.

import { $, h, replace } from "./dom.js";
import { get } from "./api.js";
import { errorView } from "./errors.js";
import { price } from "./format.js";
import { candleChart } from "./charts.js";

const POLL_MS = 10000;
// How far back each interval looks: well under the API's 1000 buckets.
const SPAN_S = { "1m": 2 * 3600, "5m": 8 * 3600, "15m": 24 * 3600, "1h": 4 * 86400, "4h": 14 * 86400, "1d": 90 * 86400 };

export class CandlesPanel {
  constructor(pools) {
    this.pools = pools;
    this.poolSelect = $("#candle-pool");
    this.intervalSelect = $("#candle-interval");
    replace(this.intervalSelect, Object.keys(SPAN_S).map((name) => h("option", { value: name }, name)));
    this.poolSelect.addEventListener("change", () => this.load());
    this.intervalSelect.addEventListener("change", () => this.load());
    pools.addEventListener("pools", () => this.renderPools());
    window.addEventListener("resize", () => this.draw());
    this.last = null;
  }

  start() {
    setInterval(() => this.load(), POLL_MS);
  }

  renderPools() {
    const ids = this.pools.pools.map((p) => p.poolId);
    if (ids.join() === this.poolIds) return;
    this.poolIds = ids.join();
    const chosen = this.poolSelect.value || ids[0];
    replace(this.poolSelect, ids.map((id) => h("option", { value: id, selected: id === chosen }, id)));
    this.load();
  }

  async load() {
    const poolId = this.poolSelect.value;
    if (!poolId) return;
    const interval = this.intervalSelect.value;
    const from = Math.floor(Date.now() / 1000) - SPAN_S[interval];
    const answer = await get(`/api/pools/${encodeURIComponent(poolId)}/candles?interval=${interval}&from=${from}`);
    if (!answer.ok) {
      this.last = null;
      replace($("#candle-chart"), errorView(answer));
      return;
    }
    this.last = answer.body;
    this.draw();
  }

  draw() {
    const found = this.last;
    if (!found) return;
    const trades = found.candles.reduce((sum, c) => sum + c.trades, 0);
    $("#candle-title").textContent = `${found.poolId}: ${found.interval} candles, ${found.quote} per ${found.base}, ` +
      `${plural(found.candles.length, "candle")}, ${plural(trades, "trade")} since ${new Date(found.from).toLocaleString([], { hour12: false })}`;
    candleChart($("#candle-chart"), { candles: found.candles, intervalMs: found.intervalS * 1000, yFormat: price, quote: found.quote });
  }
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
