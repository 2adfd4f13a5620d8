"""``dexengine audit`` itself, run as a command against books the engine wrote: clean, then broken.

The books live in a database and a Redis DB of their own on the session's servers (made here,
dropped here), so that breaking them touches no other test's data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from psycopg import sql
from psycopg.conninfo import make_conninfo

from localservers import LocalServers, local_servers
from runtime.root import apply_schema
from storage.queue import OrderQueue
from tests.integration.engine_harness import base_settings, run, running_engine, submit, wait_final

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).with_name("dexengine")  # the console script pyproject.toml installs
ORDERS = [("SOL", "USDC", "1.5"), ("USDC", "SOL", "250"), ("BONK", "USDC", "5000000"), ("USDC", "USDT", "1000")]
AUDIT_REDIS_DB = 9  # the engine's keys (orders:queue, ...) away from the other tests' DB 0


@dataclass(frozen=True)
class Books:
    database_url: str
    redis_url: str
    order_ids: list[str]


def _with_database(url: str, name: str) -> str:
    if "://" in url:
        return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    return make_conninfo(url, dbname=name)


@pytest.fixture(scope="module")
def books(servers: LocalServers, ray_session: None) -> Iterator[Books]:
    """Orders the engine filled, in a database of their own; the engine stopped since."""
    name = f"dexengine_audit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(servers.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    redis_url = urlunsplit(urlsplit(servers.redis_url)._replace(path=f"/{AUDIT_REDIS_DB}"))
    try:
        database_url = _with_database(servers.database_url, name)
        run(apply_schema(database_url))
        settings = base_settings(database_url, redis_url)
        with running_engine(settings):
            ids = run(submit(settings, ORDERS * 3))
            wait_final(settings, ids)
        yield Books(database_url, redis_url, ids)
    finally:
        redis.Redis.from_url(redis_url).flushdb()
        with psycopg.connect(servers.database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def audit(books: Books, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": books.database_url, "REDIS_URL": books.redis_url}
    return subprocess.run([str(COMMAND), "audit", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def audit_json(books: Books, *args: str) -> dict:
    done = audit(books, "--json", *args)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_the_books_the_engine_wrote_audit_clean(books: Books) -> None:
    done = audit(books)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("books audited at ") and lines[-1] == "  violations   none"
    assert f"  orders       {len(books.order_ids)}  (" in done.stdout
    report = audit_json(books)
    assert report["clean"] is True and report["violations"] == []
    assert report["orders"] == len(books.order_ids) and report["unfinished"] == 0
    assert report["trades"] >= len(books.order_ids) and report["pools"] >= 6
    assert report["queue"]["waiting"] == 0 and report["queue"]["delayed"] == 0


def test_a_second_final_status_and_a_pool_paid_one_unit_too_much_are_named(books: Books) -> None:
    order_id = books.order_ids[0]
    with psycopg.connect(books.database_url, autocommit=True) as conn:
        (seq,) = conn.execute("SELECT seq FROM orders WHERE id = %s", (order_id,)).fetchone()
        pool_id, trade_seq = conn.execute(
            "SELECT pool_id, seq FROM pool_trades WHERE order_id = %s ORDER BY leg LIMIT 1", (order_id,)
        ).fetchone()
        conn.execute(
            "INSERT INTO order_status_history (order_id, seq, status, attempt) VALUES (%s, %s, 'failed', 1)",
            (order_id, seq + 1),
        )
        conn.execute("UPDATE pool_trades SET amount_out = amount_out + 1 WHERE pool_id = %s AND seq = %s",
                     (pool_id, trade_seq))  # fmt: skip
        try:
            done = audit(books)
        finally:
            conn.execute("DELETE FROM order_status_history WHERE order_id = %s AND seq = %s", (order_id, seq + 1))
            conn.execute("UPDATE pool_trades SET amount_out = amount_out - 1 WHERE pool_id = %s AND seq = %s",
                         (pool_id, trade_seq))  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    for kind in ("final_twice", "illegal_transition", "row_off_history", "reserves_off"):
        assert f"    {kind} (1)" in done.stdout, done.stdout
    assert f"      {order_id}: confirmed at seq {seq}, failed at seq {seq + 1}" in done.stdout
    assert f"      {pool_id}: " in done.stdout
    assert audit(books).returncode == 0  # and mended, the books are clean again


def test_an_order_the_queue_lost_is_stalled_and_unqueued(books: Books) -> None:
    order_id = str(uuid.uuid4())
    with psycopg.connect(books.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orders (id, token_in, token_out, mint_in, mint_out, amount_in, amount_in_decimal,"
            " slippage_bps) SELECT %s, token_in, token_out, mint_in, mint_out, amount_in, amount_in_decimal,"
            " slippage_bps FROM orders WHERE id = %s",
            (order_id, books.order_ids[0]),
        )
        conn.execute("INSERT INTO order_status_history (order_id, seq, status, attempt) VALUES (%s, 1, 'pending', 1)",
                     (order_id,))  # fmt: skip
        try:
            fresh = audit_json(books)  # pending for an instant: progressing
            stale = audit_json(books, "--stale-after", "0")
        finally:
            conn.execute("DELETE FROM orders WHERE id = %s", (order_id,))
    assert fresh["clean"] is True and fresh["unfinished"] == 1
    assert fresh["oldestUnfinished"]["orderId"] == order_id
    assert stale["clean"] is False
    found = {(v["kind"], v["subject"]) for v in stale["violations"] if v["kind"] != "stale_delivery"}
    assert found == {("stalled", order_id), ("unqueued", order_id)}


def test_without_urls_it_audits_the_servers_running_from_the_data_dir(storage_tmp: Path) -> None:
    data_dir = storage_tmp / "audit-data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DEXENGINE_DATA_DIR"] = str(data_dir)
    with local_servers(data_dir, durable=False) as running:
        run(apply_schema(running.database_url))
        done = subprocess.run([str(COMMAND), "audit", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["clean"] is True and report["orders"] == 0 and report["queue"]["waiting"] == 0


def test_without_servers_it_says_so_and_starts_none(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DEXENGINE_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([str(COMMAND), "audit"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no PostgreSQL and Redis" in done.stderr and done.stdout == ""
    assert not (tmp_path / "data").exists()


async def test_the_queue_names_each_unacknowledged_delivery(redis_client, rkey: str) -> None:
    queue = OrderQueue(redis_client, stream=f"{rkey}queue", group="executors", delayed_key=f"{rkey}delayed")
    assert await queue.pending_entries() == []  # no group yet
    await queue.ensure_group()
    for order_id in ("order-a", "order-b", "order-c"):
        await queue.enqueue(order_id)
    delivered = await queue.read("dispatcher", count=2)
    await redis_client.xdel(queue.stream, delivered[1][0])  # deleted while pending
    entries = await queue.pending_entries(batch=1)  # a page at a time
    assert [(e.msg_id, e.order_id, e.consumer) for e in entries] == [
        (delivered[0][0], "order-a", "dispatcher"), (delivered[1][0], None, "dispatcher"),
    ]  # fmt: skip
    assert all(0 <= e.idle_ms < 10_000 for e in entries)
