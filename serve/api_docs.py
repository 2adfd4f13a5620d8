"""What the OpenAPI document says about the API as a whole: its description, tags and common errors."""

from __future__ import annotations

from typing import Any

from serve.errors import error_example

API_DESCRIPTION = """
A simulated Solana DEX order execution engine. Orders are routed to the pool
(Raydium constant-product or Meteora DLMM, simulated as Ray actors with real
AMM state) that pays the most, executed with 10-way concurrency, stored in
PostgreSQL, and streamed over WebSockets.

**Lifecycle**: `pending` → `routing` → `building` → `submitted` →
`confirmed` | `failed` (transient failures go back to `pending` and are
retried after 1 s, 2 s, 4 s).

**Units**: amounts are decimal strings in token units (`"1.5"` SOL), never
floats; base units are given beside them as `...BaseUnits`.

**WebSockets** (not listed by OpenAPI, which describes HTTP only):

* `ws://HOST/api/orders/{orderId}/ws` — the order's status stream: the
  events so far, then live ones, each once, in `seq` order
  (`{"type": "status", "orderId", "seq", "status", "attempt", "timestamp",
  "details"}`); closed with 1000 after `confirmed` or `failed`; an unknown or
  malformed id is closed with 4404.
* `ws://HOST/api/orders/execute` — send the order (the POST body) as the
  first message; receive `{"type": "accepted", "orderId", ...}` then the
  status stream on the same connection. A bad order gets
  `{"type": "error", "error": {...}}` and close code 4400 (4409 for an
  idempotency conflict, 4429 over the client's order rate limit, 1013 when
  storage is down).

**Limits** per client (the `X-Client-Id` header, else the address): order
submissions per minute (429 `RATE_LIMITED` with `Retry-After`), open
WebSockets (a socket over the cap is closed with 4429
`TOO_MANY_CONNECTIONS`), and request bodies of 16 KiB (413).

**Errors** always look like `{"error": {"code", "message", "details"}}`.
"""

TAGS = [
    {"name": "orders", "description": "Submit orders and follow them."},
    {"name": "market", "description": "Pools and route previews."},
    {"name": "chain", "description": "The simulated chain: slot, congestion, recent fees."},
    {"name": "operations", "description": "Queue metrics and health."},
]

# Answers any operation may give.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: error_example(422, "VALIDATION_ERROR", "amountIn: field required", summary="Invalid input"),
    429: error_example(429, "RATE_LIMITED", "too many order submissions: at most 600 per 60 s for each "
                       "client; retry in 12 s", {"limit": 600, "windowS": 60, "retryAfterS": 12,
                       "client": "id:my-bot"}, summary="Over the client's rate limit (see Retry-After)"),
    500: error_example(500, "INTERNAL_ERROR", "internal server error; it has been logged",
                       summary="A bug (never caused by input)"),
}  # fmt: skip
