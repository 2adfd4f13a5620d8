// The live feed: every order's status events over one WebSocket (/api/orders/ws); reconnects on its own.
// While it is down the page reads GET /api/orders every few seconds instead, and says so.

import { openSocket } from "./api.js";

const POLL_MS = 3000;
const MAX_BACKOFF_MS = 15000;

export class LiveFeed extends EventTarget {
  constructor({ onEvent, onSubscribed, poll }) {
    super();
    Object.assign(this, { onEvent, onSubscribed, poll });
    this.socket = null;
    this.backoff = 1000;
    this.state = "connecting";
    this.detail = "";
    this.pollTimer = null;
    this.retryTimer = null;
  }

  setState(state, detail = "") {
    this.state = state;
    this.detail = detail;
    if (state === "live") this.stopPolling();
    else this.startPolling();
    this.dispatchEvent(new Event("state"));
  }

  start() {
    clearTimeout(this.retryTimer);
    let socket;
    try {
      socket = openSocket("/api/orders/ws");
    } catch (exc) {
      // A key with characters a subprotocol cannot carry (a space, a slash): no socket can be offered.
      this.socket = null;
      this.setState("refused", `the API key cannot be sent over a WebSocket (${exc.message})`);
      return;
    }
    this.socket = socket;
    this.setState("connecting");
    socket.addEventListener("message", (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data.type === "subscribed") {
        this.backoff = 1000;
        this.setState("live");
        this.onSubscribed();
      } else if (data.type === "status") {
        this.onEvent(data);
      } else if (data.type === "error" && data.error) {
        this.setState("refused", `${data.error.code}: ${data.error.message}`);
      }
    });
    socket.addEventListener("close", (closed) => {
      if (this.socket !== socket) return;
      const why = closed.code === 1006 ? "connection lost" : `closed ${closed.code}${closed.reason ? ` ${closed.reason}` : ""}`;
      this.setState(this.state === "refused" ? "refused" : "down", this.state === "refused" ? `${this.detail} (${why})` : why);
      this.retryTimer = setTimeout(() => this.start(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    });
  }

  // A new key: a new socket (the old one closes quietly).
  restart() {
    const old = this.socket;
    this.socket = null;
    if (old) old.close(1000, "new API key");
    this.backoff = 1000;
    this.start();
  }

  startPolling() {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.poll(), POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}
