// The orders the page knows: their view from GET /api/orders and the status events seen for them, by seq.

export const FINAL = new Set(["confirmed", "failed", "cancelled", "expired"]);
export const WAITING_TYPES = new Set(["limit", "stop_loss", "take_profit", "trailing_stop", "sniper"]);
const CANCELLABLE = new Set(["pending", "open", "triggered"]);
const KEPT = 500;

export class OrderBook extends EventTarget {
  constructor() {
    super();
    this.orders = new Map();
  }

  entry(orderId) {
    let found = this.orders.get(orderId);
    if (!found) {
      found = { id: orderId, view: null, events: new Map(), seenAt: Date.now(), historyLoaded: false };
      this.orders.set(orderId, found);
    }
    return found;
  }

  putView(view) {
    this.entry(view.orderId).view = view;
    this.changed();
  }

  putHistory(orderId, events) {
    const entry = this.entry(orderId);
    for (const event of events) entry.events.set(event.seq, event);
    entry.historyLoaded = true;
    this.changed();
  }

  // A status event from the feed; true when the order was not known before.
  putEvent(event) {
    const known = this.orders.has(event.orderId);
    this.entry(event.orderId).events.set(event.seq, event);
    this.changed();
    return !known;
  }

  changed() {
    if (this.orders.size > KEPT) {
      const oldest = this.list().slice(KEPT);
      for (const entry of oldest) this.orders.delete(entry.id);
    }
    this.dispatchEvent(new Event("change"));
  }

  list() {
    return [...this.orders.values()].sort((a, b) => createdAt(b) - createdAt(a));
  }
}

export function events(entry) {
  return [...entry.events.values()].sort((a, b) => a.seq - b.seq);
}

function lastEvent(entry) {
  let last = null;
  for (const event of entry.events.values()) if (!last || event.seq > last.seq) last = event;
  return last;
}

export function status(entry) {
  const last = lastEvent(entry);
  if (entry.view && (!last || entry.view.seq >= last.seq)) return entry.view.status;
  return last ? last.status : "pending";
}

export function createdAt(entry) {
  if (entry.view) return Date.parse(entry.view.createdAt);
  const first = entry.events.get(1);
  return first ? Date.parse(first.timestamp) : entry.seenAt;
}

export function isCancellable(entry) {
  return Boolean(entry.view) && WAITING_TYPES.has(entry.view.type) && CANCELLABLE.has(status(entry));
}

// The last routing decision: every venue's quote, the one chosen and why.
export function routingDecision(entry) {
  const routed = events(entry).filter((e) => e.status === "routing" && e.details && e.details.quotes);
  return routed.length ? routed[routed.length - 1].details : null;
}

export function pair(entry) {
  const view = entry.view;
  return view ? [view.tokenIn, view.tokenOut].sort().join("/") : null;
}
