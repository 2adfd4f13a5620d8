"""API keys and owners, through the real API on a real PostgreSQL and Redis.

Missing, malformed, wrong and revoked keys are 401; another owner's order is
404 everywhere it can be reached (read, history, list, cancel, its WebSocket,
the live feed); the queue, ``/metrics`` and the simulation need an admin key
(403); per-client limits count by owner; keys are never logged; and the
``dexengine keys`` command stores only a hash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import websockets
from psycopg_pool import AsyncConnectionPool

from engine.api_keys import KeyRing, issue_key, split_key
from engine.local_gateway import LocalGateway
from engine.settings import ApiSettings, EngineSettings
from serve.services import Services
from sim.orders import OrderStatus
from storage.keys import KeyStore
from tests.integration.test_api import FAST, ORDER, Env, assert_error_shape, client_for, live_server, receive

pytestmark = pytest.mark.integration

WAITING = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "limitPrice": "100000"}


@pytest.fixture(scope="module")
def gateway() -> LocalGateway:
    return LocalGateway()


@pytest.fixture
async def env(db: AsyncConnectionPool, redis_client: aioredis.Redis, rkey: str, gateway: LocalGateway,
              redis_url: str) -> Env:  # fmt: skip
    return Env(db, redis_client, rkey, gateway, redis_url)


class Keys:
    """Three keys in the database: two owners and an admin; and the headers that carry each.

    Their names are this test's own (``alice-<random>``): the per-client windows in Redis outlive a test."""

    def __init__(self, db: AsyncConnectionPool) -> None:
        self.store = KeyStore(db)
        run = uuid.uuid4().hex[:6]
        self.issued = {role: issue_key(f"{role}-{run}", admin=role == "ops") for role in ("alice", "bob", "ops")}

    def name(self, role: str) -> str:
        return self.issued[role].name

    async def add(self) -> Keys:
        for issued in self.issued.values():
            await self.store.add(issued)
        return self

    def key(self, role: str) -> str:
        return self.issued[role].key

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(role)}"}


@pytest.fixture
async def keys(db: AsyncConnectionPool) -> Keys:
    return await Keys(db).add()


def keyed(env: Env, options: ApiSettings = FAST, **overrides: Any) -> Services:
    ring = KeyRing(KeyStore(env.db), mode=options.auth, open_address=not options.on_loopback, cache_s=0.0)
    return env.services(options, keys=ring, **overrides)


@pytest.fixture
async def api(env: Env, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(keyed(env)) as client:
        yield client


async def place(api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any] = ORDER) -> str:
    response = await api.post("/api/orders/execute", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["orderId"])


# --------------------------------------------------------------------------- who may call


async def test_without_a_valid_key_the_api_answers_401(api: httpx.AsyncClient, keys: Keys, env: Env) -> None:
    before = await env.rows()
    missing = await api.post("/api/orders/execute", json=ORDER)
    assert assert_error_shape(missing, 401, "UNAUTHORIZED")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    alice = keys.key("alice")
    tampered = alice[:-1] + ("A" if alice[-1] != "A" else "B")
    for headers in ({"Authorization": "Bearer nonsense"}, {"X-API-Key": tampered},
                    {"Authorization": f"Basic {alice}"}):  # fmt: skip
        response = await api.post("/api/orders/execute", json=ORDER, headers=headers)
        code = "UNAUTHORIZED" if headers.get("Authorization", "").startswith("Basic") else "INVALID_API_KEY"
        assert_error_shape(response, 401, code)
    for path in ("/api/orders", "/api/pools", "/api/quote?tokenIn=SOL&tokenOut=USDC&amountIn=1"):
        assert_error_shape(await api.get(path), 401, "UNAUTHORIZED")
    assert await env.rows() == before  # nothing half-stored
    assert (await api.get("/health")).status_code == 200  # health stays open
    assert (await api.post("/api/orders/execute", json=ORDER, headers={"X-API-Key": alice})).status_code == 202


async def test_a_revoked_key_is_401_at_once(api: httpx.AsyncClient, keys: Keys) -> None:
    assert (await api.get("/api/orders", headers=keys.bearer("bob"))).status_code == 200
    assert (await keys.store.revoke(keys.name("bob"))) is not None
    assert_error_shape(await api.get("/api/orders", headers=keys.bearer("bob")), 401, "INVALID_API_KEY")
    assert (await api.get("/api/orders", headers=keys.bearer("alice"))).status_code == 200


async def test_keys_are_optional_until_one_exists_and_the_modes_override(env: Env, keys: Keys) -> None:
    for issued in keys.issued.values():
        await keys.store.revoke(issued.name)
    async with client_for(keyed(env)) as api:  # auto, loopback, no active key: the original spec's clients
        assert (await api.post("/api/orders/execute", json=ORDER)).status_code == 202
        assert (await api.get("/api/queue/metrics")).status_code == 200
    async with client_for(keyed(env, FAST.model_copy(update={"auth": "on"}))) as api:
        assert_error_shape(await api.get("/api/orders"), 401, "UNAUTHORIZED")
    async with client_for(keyed(env, FAST.model_copy(update={"host": "0.0.0.0"}))) as api:
        assert_error_shape(await api.get("/api/orders"), 401, "UNAUTHORIZED")
    await KeyStore(env.db).add(issue_key("carol"))
    async with client_for(keyed(env, FAST.model_copy(update={"auth": "off"}))) as api:
        assert (await api.get("/api/orders")).status_code == 200


# --------------------------------------------------------------------------- whose order it is


async def test_another_owners_order_does_not_exist_for_you(api: httpx.AsyncClient, keys: Keys) -> None:
    mine = await place(api, keys.bearer("alice"))
    waiting = await place(api, keys.bearer("alice"), WAITING)
    bobs = await place(api, keys.bearer("bob"))
    bob = keys.bearer("bob")
    for path in (f"/api/orders/{mine}", f"/api/orders/{mine}/history"):
        assert_error_shape(await api.get(path, headers=bob), 404, "ORDER_NOT_FOUND")
        assert (await api.get(path, headers=keys.bearer("alice"))).status_code == 200
        assert (await api.get(path, headers=keys.bearer("ops"))).status_code == 200  # the admin sees all
    assert_error_shape(await api.delete(f"/api/orders/{waiting}", headers=bob), 404, "ORDER_NOT_FOUND")
    assert (await api.get(f"/api/orders/{waiting}", headers=bob)).status_code == 404
    cancelled = await api.delete(f"/api/orders/{waiting}", headers=keys.bearer("alice"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    def listed(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {order["orderId"] for order in response.json()["orders"]}

    assert listed(await api.get("/api/orders", headers=keys.bearer("alice"))) == {mine, waiting}
    assert listed(await api.get("/api/orders", headers=bob)) == {bobs}
    assert listed(await api.get("/api/orders", headers=keys.bearer("ops"))) == {mine, waiting, bobs}
    page = await api.get("/api/orders?limit=1", headers=keys.bearer("alice"))
    second = await api.get(f"/api/orders?limit=1&cursor={page.json()['nextCursor']}", headers=keys.bearer("alice"))
    assert listed(page) | listed(second) == {mine, waiting} and second.json()["nextCursor"] is None


async def test_an_idempotency_key_is_each_owners_own(api: httpx.AsyncClient, keys: Keys) -> None:
    alice = {**keys.bearer("alice"), "Idempotency-Key": "k-1"}
    bob = {**keys.bearer("bob"), "Idempotency-Key": "k-1"}
    first = await place(api, alice)
    other = await place(api, bob, {**ORDER, "amountIn": "2"})  # no 409: bob's k-1 is not alice's
    assert first != other
    again = await api.post("/api/orders/execute", json=ORDER, headers=alice)
    assert again.status_code == 200 and again.json()["orderId"] == first
    conflict = await api.post("/api/orders/execute", json={**ORDER, "amountIn": "3"}, headers=bob)
    assert assert_error_shape(conflict, 409, "IDEMPOTENCY_CONFLICT")["details"]["existingOrderId"] == other


async def test_admin_only_routes_are_403_for_other_keys(api: httpx.AsyncClient, keys: Keys) -> None:
    shock = {"token": "SOL", "moveBps": 100}
    for method, path, body in (("GET", "/api/queue/metrics", None), ("GET", "/metrics", None),
                               ("POST", "/api/sim/shock", shock)):  # fmt: skip
        user = await api.request(method, path, json=body, headers=keys.bearer("alice"))
        assert_error_shape(user, 403, "FORBIDDEN")
        admin = await api.request(method, path, json=body, headers=keys.bearer("ops"))
        assert admin.status_code != 403 and admin.status_code < 500, (path, admin.text)
    assert (await api.get("/api/queue/metrics", headers=keys.bearer("ops"))).status_code == 200


async def test_the_order_limit_counts_by_owner_not_by_label(env: Env, keys: Keys) -> None:
    options = FAST.model_copy(update={"order_limit_per_minute": 2})
    async with client_for(keyed(env, options)) as api:
        for label in ("a", "b"):
            headers = {**keys.bearer("alice"), "X-Client-Id": label}
            assert (await api.post("/api/orders/execute", json=ORDER, headers=headers)).status_code == 202
        third = await api.post("/api/orders/execute", json=ORDER, headers={**keys.bearer("alice"), "X-Client-Id": "c"})
        assert assert_error_shape(third, 429, "RATE_LIMITED")["details"]["client"] == f"key:{keys.name('alice')}"
        assert (await api.post("/api/orders/execute", json=ORDER, headers=keys.bearer("bob"))).status_code == 202


# --------------------------------------------------------------------------- WebSockets


async def test_websockets_need_a_key_and_hide_other_owners(env: Env, keys: Keys) -> None:
    async with live_server(keyed(env)) as host, httpx.AsyncClient(base_url=f"http://{host}") as http:
        mine = (await http.post("/api/orders/execute", json=ORDER, headers=keys.bearer("alice"))).json()["orderId"]
        url = f"ws://{host}/api/orders/{mine}/ws"
        async with websockets.connect(url) as ws:  # no key
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert error["type"] == "error" and error["error"]["code"] == "UNAUTHORIZED"
            await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4401
        async with websockets.connect(url, additional_headers=keys.bearer("bob")) as ws:
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert error["error"]["code"] == "ORDER_NOT_FOUND"
            await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4404
        # a browser offers its key as a subprotocol, and the socket is accepted with "dexengine"
        offered = ["dexengine", f"dexengine.key.{keys.key('alice')}"]
        async with websockets.connect(url, subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "dexengine"
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert first["type"] == "status" and first["orderId"] == mine and first["seq"] == 1
        upgrade = f"ws://{host}/api/orders/execute"
        async with websockets.connect(upgrade, additional_headers=keys.bearer("bob")) as ws:
            await ws.send(json.dumps(ORDER))
            accepted = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert accepted["type"] == "accepted"
        assert (await env.store.get_order(accepted["orderId"])).owner == keys.name("bob")  # type: ignore[union-attr]


async def test_the_live_feed_carries_only_the_callers_orders(env: Env, keys: Keys) -> None:
    async with live_server(keyed(env)) as host, httpx.AsyncClient(base_url=f"http://{host}") as http:
        feed = f"ws://{host}/api/orders/ws"
        async with (
            websockets.connect(feed, additional_headers=keys.bearer("alice")) as alice_feed,
            websockets.connect(feed, additional_headers=keys.bearer("ops")) as admin_feed,
        ):
            for ws in (alice_feed, admin_feed):
                assert (await receive(ws, 1))[0] == {"type": "subscribed"}
            bobs = (await http.post("/api/orders/execute", json=ORDER, headers=keys.bearer("bob"))).json()["orderId"]
            mine = (await http.post("/api/orders/execute", json=ORDER, headers=keys.bearer("alice"))).json()["orderId"]
            seen_by_admin = {m["orderId"] for m in await receive(admin_feed, 2)}
            seen_by_alice = await receive(alice_feed, 1)
            assert seen_by_admin == {bobs, mine}
            assert [(m["type"], m["orderId"], m["status"]) for m in seen_by_alice] == [("status", mine, "pending")]
            await env.step(bobs, OrderStatus.ROUTING)
            await env.step(mine, OrderStatus.ROUTING)
            routed = await receive(alice_feed, 1)
            assert [(m["orderId"], m["status"]) for m in routed] == [(mine, "routing")]
        async with websockets.connect(feed) as anonymous:
            assert json.loads(await asyncio.wait_for(anonymous.recv(), 5))["error"]["code"] == "UNAUTHORIZED"
            await asyncio.wait_for(anonymous.wait_closed(), 5)
        assert anonymous.close_code == 4401


# --------------------------------------------------------------------------- secrets


@pytest.fixture
def no_keys(database_url: str) -> Any:
    """Tests that write keys through the command leave the session's database as they found it."""
    import psycopg

    def clear() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM api_keys")

    clear()
    yield
    clear()


async def test_keys_are_never_logged(env: Env, keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with client_for(keyed(env)) as api:
        for name in ("alice", "ops"):
            await api.post("/api/orders/execute", json=ORDER, headers=keys.bearer(name))
            await api.get("/api/orders", headers={"X-API-Key": keys.key(name)})
            await api.get("/metrics", headers=keys.bearer(name))
        await api.get("/api/orders", headers={"X-API-Key": keys.key("alice")[:-2] + "zz"})
    text = "\n".join(f"{record.getMessage()} {record.args!r} {record.exc_text or ''}" for record in caplog.records)
    for issued in keys.issued.values():
        secret = split_key(issued.key)[1]  # type: ignore[index]  # a secret may itself hold "_"
        assert secret not in text and issued.key not in text


@pytest.mark.usefixtures("no_keys")
def test_the_keys_command_prints_a_key_once_and_stores_only_its_hash(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["keys", "create", "--name", "cli-user", "--admin"]) == 0
    created = capsys.readouterr().out
    key = next(word for word in created.split() if word.startswith("dex_"))
    assert main(["keys", "create", "--name", "cli-user"]) == 1  # the name is taken
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "cli-user" in listed and "admin" in listed and "active" in listed and key not in listed
    secret = split_key(key)[1]  # type: ignore[index]

    async def stored() -> list[tuple[Any, ...]]:
        import psycopg

        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute("SELECT name, key_id, secret_hash, admin FROM api_keys WHERE name = 'cli-user'")
            return await cur.fetchall()

    rows = asyncio.run(stored())
    assert len(rows) == 1 and rows[0][3] is True
    assert secret not in " ".join(map(str, rows[0])) and rows[0][2].startswith("$argon2id$")
    assert main(["keys", "revoke", "cli-user"]) == 0 and main(["keys", "revoke", "nobody"]) == 1
    assert main(["keys", "list"]) == 0 and "revoked" in capsys.readouterr().out
    assert main(["keys", "create", "--name", "bad name"]) == 2


@pytest.mark.usefixtures("no_keys")
def test_an_exposed_api_needs_a_key_before_it_starts(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main
    from runtime.keys import ExposedWithoutKeys, check_exposure

    exposed = EngineSettings(database_url=database_url).model_copy(update={"api": ApiSettings(host="0.0.0.0")})
    check_exposure(exposed.model_copy(update={"api": ApiSettings()}))  # loopback: fine without keys
    check_exposure(exposed.model_copy(update={"api": ApiSettings(host="0.0.0.0", auth="off")}))  # asked for
    with pytest.raises(ExposedWithoutKeys, match="0.0.0.0"):
        check_exposure(exposed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", database_url)
        assert main(["keys", "create", "--name", "ops"]) == 0
    check_exposure(exposed)
    capsys.readouterr()
