// Health (GET /health) and the queue's figures (GET /api/queue/metrics), at a glance.

import { $, h, replace } from "./dom.js";
import { get } from "./api.js";
import { errorView } from "./errors.js";
import { seconds } from "./format.js";

const HEALTH_MS = 5000;
const METRICS_MS = 2000;

export function startHealth() {
  const poll = async () => {
    const answer = await get("/health");
    const body = answer.body && typeof answer.body === "object" && answer.body.checks ? answer.body : null;
    const box = $("#health");
    if (!body) {
      replace(box, h("span", { class: "pill down" }, answer.error ? answer.error.code : "health unknown"));
      box.title = answer.error ? answer.error.message : "";
      return;
    }
    box.dataset.status = body.status;
    box.title = body.error ? body.error.message : "";
    replace(box, Object.entries(body.checks).map(([name, check]) =>
      h("span", { class: `pill ${check.ok ? "ok" : "down"}`, title: check.ok ? `${check.latencyMs ?? "?"} ms` : check.error || "" },
        `${name} ${check.ok ? "up" : "down"}`)));
  };
  poll();
  setInterval(poll, HEALTH_MS);
}

function tile(label, value, note) {
  return h("div", { class: "tile", dataset: { figure: label } },
    h("div", { class: "tile-value" }, value === null || value === undefined ? "—" : String(value)),
    h("div", { class: "tile-label" }, label),
    note ? h("div", { class: "tile-note" }, note) : null);
}

export function startQueueMetrics() {
  const poll = async () => {
    const answer = await get("/api/queue/metrics");
    const box = $("#queue");
    if (!answer.ok) {
      replace(box, errorView(answer, { title: "queue metrics" }));
      return;
    }
    const m = answer.body;
    const oldest = m.oldestNonFinal ? `${m.oldestNonFinal.status}, ${m.oldestNonFinal.orderId.slice(0, 8)}` : "every order final";
    replace(box,
      tile("waiting", m.waiting),
      tile("running", m.running, m.engineAvailable ? `of ${m.concurrency} slots` : "engine not answering"),
      tile("retrying", m.retrying),
      tile("open", m.byStatus.open ?? 0, "orders that wait"),
      tile("completed", m.completed),
      tile("failed", m.failed),
      tile("rate limit", m.rateLimitPerMinute ? `${m.rateLimitPerMinute}/min` : "off"),
      tile("oldest non-final", seconds(m.oldestNonFinalAgeS), oldest));
  };
  poll();
  setInterval(poll, METRICS_MS);
}
