"""Locust users for the engine: traders (submit and follow orders) and readers.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8000
    python -m loadtest.run smoke          # headless, engine started for you

``TraderUser`` POSTs an order, follows its WebSocket stream
(``/api/orders/{id}/ws``, with ``websocket-client``, which gevent patches)
until ``confirmed`` or ``failed``, and reports to Locust, beside the HTTP
figures, as entries of their own:

* ``ORDER``  ``e2e <kind> -> <status>``: accepted -> final, measured by the
  client (POST sent -> final event received);
* ``STAGE``  ``pending->routing``, ``routing->building``,
  ``building->submitted``, ``submitted->final`` (and retry transitions such
  as ``submitted->pending (retry)``): differences of the events' server
  timestamps (each set at commit in PostgreSQL);
* ``WS``     ``connect`` (handshake) and ``delivery`` (an event's server
  timestamp -> received here; same machine, same clock), for events
  committed after the socket was open (replayed ones are not deliveries).

Order kinds: ``normal`` (must confirm), ``too_large`` (far beyond the pools'
liquidity: must fail with INSUFFICIENT_LIQUIDITY) and ``tight`` (1 bps
slippage: may confirm, or fail with SLIPPAGE_EXCEEDED after its retries).
An outcome that matches its kind is a success; anything else is a Locust
failure, so a clean run has no failures.

``ReaderUser`` only reads: an order, its history, lists, pools, quotes,
queue metrics.

Every knob is a Locust option with an environment variable (see
``--help``): weights, the pair mix, sizes, slippage, the share of orders
that must fail, waits, the order timeout. ``LOADTEST_SHAPE=step`` (read at
import) turns on a step-load shape for saturation runs.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import websocket  # websocket-client
from locust import HttpUser, LoadTestShape, events, task

FINAL = ("confirmed", "failed")

DEFAULT_PAIRS = (
    "SOL>USDC:4,USDC>SOL:4,SOL>USDT:1,USDT>SOL:1,JUP>USDC:1,USDC>JUP:1,BONK>USDC:1,USDC>BONK:1"
)
# about 15..300 USD per order: small against pools of 40k..200k
SIZES: dict[str, tuple[float, float]] = {
    "SOL": (0.1, 2.0),
    "USDC": (15.0, 300.0),
    "USDT": (15.0, 300.0),
    "JUP": (20.0, 375.0),
    "BONK": (750_000.0, 15_000_000.0),
}
# far beyond any pool of the pair (and any two-hop route): INSUFFICIENT_LIQUIDITY
TOO_LARGE: dict[str, str] = {
    "SOL": "5000",
    "USDC": "750000",
    "USDT": "750000",
    "JUP": "1000000",
    "BONK": "40000000000",
}
DECIMALS = {"SOL": 9, "USDC": 6, "USDT": 6, "JUP": 6, "BONK": 5}


# --------------------------------------------------------------------------- configuration


@dataclass
class Config:
    pairs: list[tuple[str, str, float]] = field(default_factory=list)
    size_scale: float = 1.0
    slippage_bps: list[int] = field(default_factory=lambda: [100, 200, 300])
    too_large_pct: float = 5.0
    tight_pct: float = 5.0
    order_timeout_s: float = 120.0
    trader_wait: tuple[float, float] = (0.5, 2.0)
    reader_wait: tuple[float, float] = (0.5, 1.5)
    ws_timeout_s: float = 30.0


def parse_pairs(text: str) -> list[tuple[str, str, float]]:
    """``"SOL>USDC:4,USDC>SOL:4"`` -> [("SOL", "USDC", 4.0), ...]."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        spec, _, weight = item.partition(":")
        token_in, sep, token_out = spec.partition(">")
        if not sep or not token_in or not token_out:
            raise ValueError(f"pair {item!r}: expected IN>OUT[:weight]")
        pairs.append((token_in.strip().upper(), token_out.strip().upper(), float(weight or 1)))
    if not pairs:
        raise ValueError("no pairs")
    return pairs


def parse_range(text: str) -> tuple[float, float]:
    low, _, high = str(text).partition(",")
    lo = float(low)
    return lo, float(high) if high else lo


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


CONFIG = Config(
    pairs=parse_pairs(_env("LOADTEST_PAIRS", DEFAULT_PAIRS)),
    size_scale=float(_env("LOADTEST_SIZE_SCALE", "1")),
    slippage_bps=[int(x) for x in _env("LOADTEST_SLIPPAGE_BPS", "100,200,300").split(",")],
    too_large_pct=float(_env("LOADTEST_TOO_LARGE_PCT", "5")),
    tight_pct=float(_env("LOADTEST_TIGHT_PCT", "5")),
    order_timeout_s=float(_env("LOADTEST_ORDER_TIMEOUT_S", "120")),
    trader_wait=parse_range(_env("LOADTEST_TRADER_WAIT", "0.5,2")),
    reader_wait=parse_range(_env("LOADTEST_READER_WAIT", "0.5,1.5")),
)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("dexengine load test")
    group.add_argument("--trader-weight", type=int, env_var="LOADTEST_TRADER_WEIGHT", default=3,
                       help="weight of TraderUser (0: none)")
    group.add_argument("--reader-weight", type=int, env_var="LOADTEST_READER_WEIGHT", default=1,
                       help="weight of ReaderUser (0: none)")
    group.add_argument("--pairs", env_var="LOADTEST_PAIRS", default=DEFAULT_PAIRS,
                       help="order mix: IN>OUT:weight,...")
    group.add_argument("--size-scale", type=float, env_var="LOADTEST_SIZE_SCALE", default=1.0,
                       help="multiplies the normal order sizes (about 15..300 USD)")
    group.add_argument("--slippage-bps", env_var="LOADTEST_SLIPPAGE_BPS", default="100,200,300",
                       help="slippage tolerances of normal orders, picked at random")
    group.add_argument("--too-large-pct", type=float, env_var="LOADTEST_TOO_LARGE_PCT", default=5.0,
                       help="%% of orders far too large for the liquidity (must fail)")
    group.add_argument("--tight-pct", type=float, env_var="LOADTEST_TIGHT_PCT", default=5.0,
                       help="%% of orders with 1 bps slippage (may fail after retries)")
    group.add_argument("--order-timeout", type=float, env_var="LOADTEST_ORDER_TIMEOUT_S", default=120.0,
                       help="give up following an order after this many seconds")
    group.add_argument("--trader-wait", env_var="LOADTEST_TRADER_WAIT", default="0.5,2",
                       help="seconds between a trader's orders: MIN,MAX")
    group.add_argument("--reader-wait", env_var="LOADTEST_READER_WAIT", default="0.5,1.5",
                       help="seconds between a reader's requests: MIN,MAX")


@events.init.add_listener
def _configure(environment: Any, **_: Any) -> None:
    opts = getattr(environment, "parsed_options", None)
    if opts is None:
        return
    CONFIG.pairs = parse_pairs(opts.pairs)
    CONFIG.size_scale = opts.size_scale
    CONFIG.slippage_bps = [int(x) for x in str(opts.slippage_bps).split(",") if x.strip()]
    CONFIG.too_large_pct = opts.too_large_pct
    CONFIG.tight_pct = opts.tight_pct
    CONFIG.order_timeout_s = opts.order_timeout
    CONFIG.trader_wait = parse_range(opts.trader_wait)
    CONFIG.reader_wait = parse_range(opts.reader_wait)
    TraderUser.weight = max(0, opts.trader_weight)
    ReaderUser.weight = max(0, opts.reader_weight)
    _KINDS.reset(CONFIG)


@events.quit.add_listener
def _last_csv_rows(**_: Any) -> None:
    """Locust rewrites its CSVs once a second and closes them right after this
    event: let the writer run once more, so orders that ended during the
    stop timeout are in the CSVs too."""
    import gevent

    gevent.sleep(1.2)


# --------------------------------------------------------------------------- the order mix


class KindSchedule:
    """Smooth weighted round robin over order kinds: the shares hold in every short stretch."""

    def __init__(self, config: Config) -> None:
        self.reset(config)

    def reset(self, config: Config) -> None:
        large = max(0.0, config.too_large_pct)
        tight = max(0.0, config.tight_pct)
        self.weights = {"normal": max(0.0, 100.0 - large - tight), "too_large": large, "tight": tight}
        self.current = dict.fromkeys(self.weights, 0.0)

    def next(self) -> str:
        total = sum(self.weights.values())
        for kind, weight in self.weights.items():
            self.current[kind] += weight
        kind = max(self.current, key=self.current.__getitem__)
        self.current[kind] -= total
        return kind


_KINDS = KindSchedule(CONFIG)
_RECENT: deque[str] = deque(maxlen=500)  # order ids this process submitted (for readers)
_SEQUENCE = itertools.count(1)
# An API key, when the engine requires one (dexengine keys create --name loadtest); empty: none sent.
_API_KEY = os.environ.get("DEXENGINE_API_KEY", "").strip()
_KEY_HEADERS = {"X-API-Key": _API_KEY} if _API_KEY else {}


def _amount(symbol: str, value: float) -> str:
    decimals = min(DECIMALS.get(symbol, 6), 6)
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def make_order(rng: random.Random, kind: str | None = None, config: Config = CONFIG) -> tuple[str, dict[str, Any]]:
    """(kind, POST body) of the next order of the mix."""
    kind = kind or _KINDS.next()
    token_in, token_out, _ = rng.choices(config.pairs, weights=[w for *_, w in config.pairs])[0]
    if kind == "too_large":
        amount = TOO_LARGE.get(token_in, "1000000000")
        slippage = rng.choice(config.slippage_bps)
    else:
        low, high = SIZES.get(token_in, (1.0, 10.0))
        amount = _amount(token_in, rng.uniform(low, high) * config.size_scale)
        slippage = 1 if kind == "tight" else rng.choice(config.slippage_bps)
    body = {"type": "market", "tokenIn": token_in, "tokenOut": token_out, "amountIn": amount,
            "slippageBps": slippage}  # fmt: skip
    return kind, body


def expected(kind: str, status: str, code: str | None) -> str | None:
    """None when the outcome fits the kind, else why not."""
    if kind == "normal":
        return None if status == "confirmed" else f"a normal order {status}: {code}"
    if kind == "too_large":
        if status == "failed" and code in ("INSUFFICIENT_LIQUIDITY", "NO_ROUTE"):
            return None
        return f"a too-large order ended {status} ({code}); expected INSUFFICIENT_LIQUIDITY"
    if kind == "tight":
        if status == "confirmed" or code == "SLIPPAGE_EXCEEDED":
            return None
        return f"a 1-bps order failed with {code}; expected confirmed or SLIPPAGE_EXCEEDED"
    return None


def parse_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def stage_name(a: dict[str, Any], b: dict[str, Any]) -> str:
    to = b["status"]
    if to in FINAL:
        return f"{a['status']}->final"
    if to == "pending":
        return f"{a['status']}->pending (retry)"
    return f"{a['status']}->{to}"


class OrderFailure(Exception):
    pass


# --------------------------------------------------------------------------- users


class TraderUser(HttpUser):
    """Submits orders over HTTP and follows each on its WebSocket until it ends."""

    weight = int(_env("LOADTEST_TRADER_WEIGHT", "3"))

    def wait_time(self) -> float:
        return random.uniform(*CONFIG.trader_wait)

    def on_start(self) -> None:
        n = next(_SEQUENCE)
        self.rng = random.Random(f"{os.getpid()}-{n}")
        # each simulated trader is a client of its own for the API's per-client limits
        self.client_id = f"locust-trader-{os.getpid()}-{n}"
        self.client.headers["X-Client-Id"] = self.client_id
        self.client.headers.update(_KEY_HEADERS)

    def fire(self, request_type: str, name: str, ms: float, exc: Exception | None = None, length: int = 0) -> None:
        self.environment.events.request.fire(
            request_type=request_type, name=name, response_time=ms, response_length=length,
            exception=exc, context={},
        )  # fmt: skip

    @task
    def trade(self) -> None:
        kind, body = make_order(self.rng)
        started = time.time()
        with self.client.post(
            "/api/orders/execute", json=body, name="/api/orders/execute", catch_response=True
        ) as resp:
            if resp.status_code != 202:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return
            order_id = resp.json()["orderId"]
            ws_path = resp.json().get("wsPath") or f"/api/orders/{order_id}/ws"
        _RECENT.append(order_id)
        self.follow(kind, order_id, ws_path, started)

    def follow(self, kind: str, order_id: str, ws_path: str, started: float) -> None:
        url = self.host.replace("http", "ws", 1).rstrip("/") + ws_path
        deadline = started + CONFIG.order_timeout_s
        t0 = time.time()
        try:
            ws = websocket.create_connection(
                url, timeout=CONFIG.ws_timeout_s, enable_multithread=False,
                header=[f"X-Client-Id: {self.client_id}", *(f"{k}: {v}" for k, v in _KEY_HEADERS.items())],
            )
        except Exception as exc:  # noqa: BLE001
            self.fire("WS", "connect", (time.time() - t0) * 1000, exc)
            self.fire("ORDER", f"e2e {kind} -> lost", (time.time() - started) * 1000, OrderFailure(repr(exc)))
            return
        opened = time.time()
        self.fire("WS", "connect", (opened - t0) * 1000)
        events_seen: list[dict[str, Any]] = []
        final: dict[str, Any] | None = None
        try:
            while final is None:
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise OrderFailure(f"order {order_id} not final after {CONFIG.order_timeout_s:g}s")
                ws.settimeout(min(remaining, CONFIG.ws_timeout_s))
                raw = ws.recv()
                received = time.time()
                if not raw:
                    raise OrderFailure(f"order {order_id}: the stream closed before the final event")
                event = json.loads(raw)
                if event.get("type") != "status":
                    continue
                committed = parse_ts(event["timestamp"])
                if committed >= opened:
                    self.fire("WS", "delivery", max(0.0, received - committed) * 1000)
                events_seen.append(event)
                if event["status"] in FINAL:
                    final = event
        except OrderFailure as exc:
            self.fire("ORDER", f"e2e {kind} -> lost", (time.time() - started) * 1000, exc)
            return
        except websocket.WebSocketException as exc:
            self.fire("ORDER", f"e2e {kind} -> lost", (time.time() - started) * 1000, OrderFailure(repr(exc)))
            return
        finally:
            ws.close()
        finished = time.time()
        for a, b in itertools.pairwise(events_seen):
            self.fire("STAGE", stage_name(a, b), (parse_ts(b["timestamp"]) - parse_ts(a["timestamp"])) * 1000)
        seqs = [e["seq"] for e in events_seen]
        gap = seqs != list(range(seqs[0], seqs[0] + len(seqs))) or seqs[0] != 1
        status = final["status"]
        code = ((final.get("details") or {}).get("error") or {}).get("code")
        why = expected(kind, status, code)
        if why is None and gap:
            why = f"order {order_id}: events out of sequence {seqs}"
        self.fire(
            "ORDER", f"e2e {kind} -> {status}", (finished - started) * 1000,
            None if why is None else OrderFailure(why),
        )  # fmt: skip


class ReaderUser(HttpUser):
    """Only reads."""

    weight = int(_env("LOADTEST_READER_WEIGHT", "1"))

    def wait_time(self) -> float:
        return random.uniform(*CONFIG.reader_wait)

    def on_start(self) -> None:
        self.client.headers["X-Client-Id"] = f"locust-reader-{os.getpid()}-{next(_SEQUENCE)}"
        self.client.headers.update(_KEY_HEADERS)

    def some_order(self) -> str | None:
        if _RECENT:
            return random.choice(_RECENT)
        resp = self.client.get("/api/orders", params={"limit": 20}, name="/api/orders?limit")
        if resp.status_code == 200:
            for order in resp.json().get("orders", []):
                _RECENT.append(order["orderId"])
        return random.choice(_RECENT) if _RECENT else None

    @task(4)
    def order(self) -> None:
        order_id = self.some_order()
        if order_id:
            self.client.get(f"/api/orders/{order_id}", name="/api/orders/[id]")

    @task(2)
    def history(self) -> None:
        order_id = self.some_order()
        if order_id:
            self.client.get(f"/api/orders/{order_id}/history", name="/api/orders/[id]/history")

    @task(2)
    def recent(self) -> None:
        self.client.get("/api/orders", params={"limit": 20}, name="/api/orders?limit")

    @task(1)
    def by_status(self) -> None:
        status = random.choice(("confirmed", "failed", "pending"))
        self.client.get("/api/orders", params={"status": status, "limit": 20}, name="/api/orders?status")

    @task(2)
    def pools(self) -> None:
        self.client.get("/api/pools", name="/api/pools")

    @task(2)
    def quote(self) -> None:
        token_in, token_out, _ = random.choice(CONFIG.pairs)
        low, high = SIZES.get(token_in, (1.0, 10.0))
        amount = _amount(token_in, random.uniform(low, high))
        self.client.get("/api/quote", params={"tokenIn": token_in, "tokenOut": token_out, "amountIn": amount},
                        name="/api/quote")  # fmt: skip

    @task(1)
    def queue_metrics(self) -> None:
        self.client.get("/api/queue/metrics", name="/api/queue/metrics")


# --------------------------------------------------------------------------- a step shape for saturation


if _env("LOADTEST_SHAPE", "") == "step":

    class StepShape(LoadTestShape):
        """Adds ``LOADTEST_STEP_USERS`` users every ``LOADTEST_STEP_S`` seconds up to
        ``LOADTEST_MAX_USERS``, for ``LOADTEST_DURATION_S`` in all."""

        step_users = int(_env("LOADTEST_STEP_USERS", "5"))
        step_s = float(_env("LOADTEST_STEP_S", "20"))
        max_users = int(_env("LOADTEST_MAX_USERS", "40"))
        duration_s = float(_env("LOADTEST_DURATION_S", "180"))

        def tick(self) -> tuple[int, float] | None:
            elapsed = self.get_run_time()
            if elapsed >= self.duration_s:
                return None
            users = min(self.max_users, self.step_users * (int(elapsed // self.step_s) + 1))
            return users, float(max(self.step_users, 1))


__all__ = ["TraderUser", "ReaderUser", "make_order", "expected", "parse_pairs", "KindSchedule"]
