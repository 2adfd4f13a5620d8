"""``dexengine keys``: API keys in the engine's database, and the check that keeps an exposed API keyed.

The database is the engine's: ``DATABASE_URL`` when given, else the PostgreSQL
of the data dir (started for the command when it is not running, and stopped
after it). A new key is printed once; only its hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from engine.api_keys import issue_key, valid_name
from engine.settings import EngineSettings
from storage.db import open_pool
from storage.keys import KeyNameTaken, KeyStore
from storage.schema import apply_schema


def add_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="API keys: create, list, revoke")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key and print it (once)")
    create.add_argument("--name", required=True, help="the owner's name (letters, digits, . _ -)")
    create.add_argument("--admin", action="store_true", help="may see every order, the queue, /metrics, the sim")
    actions.add_parser("list", help="every key: name, admin, created, revoked")
    revoke = actions.add_parser("revoke", help="revoke a key: it stops working within seconds")
    revoke.add_argument("name")


@contextlib.contextmanager
def _database(settings: EngineSettings) -> Iterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    from localservers import LocalPostgres

    postgres = LocalPostgres(Path(settings.data_dir) / "postgres")
    url = postgres.start()
    try:
        yield url
    finally:
        if not postgres.reused:
            postgres.stop()


async def _run(url: str, args: argparse.Namespace) -> int:
    pool = await open_pool(url, min_size=1, max_size=1)
    try:
        await apply_schema(pool)
        store = KeyStore(pool)
        if args.action == "create":
            issued = issue_key(args.name, admin=args.admin)
            try:
                await store.add(issued)
            except KeyNameTaken as exc:
                print(f"dexengine keys: {exc}", file=sys.stderr)
                return 1
            role = "admin key" if issued.admin else "key"
            print(f"created {role} {issued.name!r}. It is shown this once; keep it secret:\n\n  {issued.key}\n")
            print(f"Send it as 'Authorization: Bearer {issued.key[:8]}...' or 'X-API-Key: ...'.")
            return 0
        if args.action == "list":
            keys = await store.keys()
            if not keys:
                print("no keys (the API needs none while it listens on loopback only)")
            for key in keys:
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M:%S}Z" if key.revoked_at else "active"
                role = "admin" if key.admin else "user"
                print(f"{key.name:<24} {role:<6} created {key.created_at:%Y-%m-%d %H:%M:%S}Z  {state}")
            return 0
        revoked = await store.revoke(args.name)
        if revoked is None:
            print(f"dexengine keys: no key named {args.name!r}", file=sys.stderr)
            return 1
        print(f"revoked {revoked.name!r}")
        return 0
    finally:
        await pool.close()


def run_keys(args: argparse.Namespace) -> int:
    if args.action == "create" and not valid_name(args.name):
        print("dexengine keys: a name is 1..64 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    settings = EngineSettings()
    with _database(settings) as url:
        return asyncio.run(_run(url, args))


class ExposedWithoutKeys(RuntimeError):
    pass


async def _any_active_key(url: str) -> bool:
    pool = await open_pool(url, min_size=1, max_size=1)
    try:
        return await KeyStore(pool).any_active()
    finally:
        await pool.close()


def check_exposure(settings: EngineSettings) -> None:
    """Refuse an API beyond loopback with no key to require (``auth: auto`` or ``on``)."""
    api = settings.api
    if api.on_loopback or api.auth == "off" or not settings.database_url:
        return
    if not asyncio.run(_any_active_key(settings.database_url)):
        raise ExposedWithoutKeys(
            f"the API would listen on {api.host} with no API key to require: create one first "
            f"(dexengine keys create --name NAME --admin), or listen on 127.0.0.1"
        )
