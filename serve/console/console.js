// The console's entry: wires the order book, the live feed, the form, the pools and the health tiles.

import { $, h, replace } from "./dom.js";
import { apiKey, get, setApiKey } from "./api.js";
import { FINAL, OrderBook } from "./book.js";
import { errorView } from "./errors.js";
import { LiveFeed } from "./feed.js";
import { OrderForm } from "./form.js";
import { OrdersTable } from "./orders.js";
import { PoolsPanel } from "./pools.js";
import { CandlesPanel } from "./candles.js";
import { startHealth, startQueueMetrics } from "./health.js";

const HISTORIES_AT_START = 30;
const book = new OrderBook();
const viewsLoading = new Map(); // orderId -> whether it changed again while being read

async function loadView(orderId) {
  if (viewsLoading.has(orderId)) {
    viewsLoading.set(orderId, true); // read it once more when this read is back: it may predate the change
    return;
  }
  viewsLoading.set(orderId, false);
  try {
    for (let again = true; again;) {
      const answer = await get(`/api/orders/${orderId}`);
      if (answer.ok) book.putView(answer.body);
      again = viewsLoading.get(orderId);
      viewsLoading.set(orderId, false);
    }
  } finally {
    viewsLoading.delete(orderId);
  }
}

const historiesLoading = new Set();

async function loadHistory(orderId) {
  if (historiesLoading.has(orderId)) return;
  historiesLoading.add(orderId);
  try {
    const answer = await get(`/api/orders/${orderId}/history`);
    if (answer.ok) book.putHistory(orderId, answer.body.events);
  } finally {
    historiesLoading.delete(orderId);
  }
}

async function loadRecent() {
  const answer = await get("/api/orders?limit=100");
  const box = $("#orders-error");
  if (!answer.ok) {
    replace(box, errorView(answer));
    return;
  }
  replace(box);
  for (const view of answer.body.orders) book.putView(view);
  const missing = book.list().filter((e) => !e.historyLoaded).slice(0, HISTORIES_AT_START);
  // A few at a time: the status path of the newest orders, without a burst of requests.
  for (let i = 0; i < missing.length; i += 4) await Promise.all(missing.slice(i, i + 4).map((e) => loadHistory(e.id)));
}

function onEvent(event) {
  const isNew = book.putEvent(event);
  const entry = book.orders.get(event.orderId);
  // Seen from its first event, an order's path is whole; joined later, the rest comes from its history.
  if (isNew && event.seq === 1) entry.historyLoaded = true;
  else if (!entry.historyLoaded) loadHistory(event.orderId);
  // The event carries the status; the order's terms and its fill come from its view.
  if (isNew || FINAL.has(event.status) || event.status === "open") loadView(event.orderId);
}

const feed = new LiveFeed({ onEvent, onSubscribed: loadRecent, poll: loadRecent });
feed.addEventListener("state", () => {
  const pill = $("#feed");
  pill.dataset.state = feed.state;
  pill.className = `pill ${feed.state === "live" ? "ok" : "down"}`;
  const label = { live: "live feed", connecting: "connecting…", down: "feed down: polling", refused: "feed refused: polling" }[feed.state];
  pill.textContent = label;
  pill.title = feed.detail;
  replace($("#feed-detail"), feed.state === "refused" ? feed.detail : "");
});

function showKey() {
  const key = apiKey();
  $("#api-key-state").textContent = key ? "key set: sent as Bearer and WebSocket subprotocol" : "no key: nothing sent";
  $("#api-key").value = key;
}

function keyChanged() {
  showKey();
  feed.restart();
  loadRecent();
}

$("#api-key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  setApiKey($("#api-key").value.trim());
  keyChanged();
});
$("#api-key-forget").addEventListener("click", () => {
  setApiKey("");
  keyChanged();
});

const table = new OrdersTable(book, { onHistoryWanted: loadHistory, onViewWanted: loadView });
const form = new OrderForm({ onAccepted: loadView });
const pools = new PoolsPanel();
pools.addEventListener("pools", () => form.learnTokens());
const candles = new CandlesPanel(pools);

showKey();
table.render();
startHealth();
startQueueMetrics();
pools.start();
candles.start();
feed.start();
loadRecent();
replace($("#started"), h("span", {}, `page opened ${new Date().toLocaleTimeString([], { hour12: false })}`));
