"""API keys: issuing one, and telling who presents one.

A key reads ``dex_<keyId>_<secret>``. The key id is public (it finds the key's
row); only an argon2id hash of the secret is stored, so the database never
holds a usable key. Verifying a secret costs ~50 ms by design, so a
:class:`KeyRing` verifies each key once per process and then trusts it for
``cache_s`` (re-reading its row, not re-hashing): a revoked key stops working
within ``cache_s`` on every replica.

Every path through :meth:`KeyRing.identify` — a malformed key, an unknown key
id, a revoked key, a wrong secret — runs one argon2 verification, so how long
an answer takes does not tell a caller which of those it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "dex"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY_PATTERN = re.compile(r"^dex_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")

# OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): ~50 ms here.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# What an unknown key is verified against, so that it costs what a known one does.
_DECOY_HASH = _HASHER.hash(secrets.token_urlsafe(32))


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key's row: everything but the key."""

    name: str
    key_id: str
    secret_hash: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``key`` is shown once and never stored."""

    name: str
    key: str
    key_id: str
    secret_hash: str
    admin: bool


class KeyStore(Protocol):
    async def key_by_id(self, key_id: str) -> KeyRecord | None: ...

    async def any_active(self) -> bool: ...


def valid_name(name: str) -> bool:
    return bool(NAME_PATTERN.match(name))


def issue_key(name: str, *, admin: bool = False) -> IssuedKey:
    """A fresh key for ``name`` (letters, digits, ``.``, ``_``, ``-``; at most 64)."""
    if not valid_name(name):
        raise ValueError("a key's name is 1..64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(name, f"{KEY_PREFIX}_{key_id}_{secret}", key_id, _HASHER.hash(secret), admin)


def split_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key; None otherwise."""
    match = _KEY_PATTERN.match(key.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(slots=True)
class _Trusted:
    record: KeyRecord
    digest: bytes  # of the secret that was verified against record.secret_hash
    until: float


class KeyRing:
    """Who a presented key belongs to, and whether keys are required at all, cached per process.

    ``mode``: ``"on"`` (keys always required), ``"off"`` (never) or ``"auto"``
    (required when ``open_address`` — the API listens beyond loopback — or
    once any active key exists).
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        mode: str = "auto",
        open_address: bool = False,
        cache_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError("mode must be auto, on or off")
        self._store, self._mode, self._open, self._cache_s, self._clock = store, mode, open_address, cache_s, clock
        self._trusted: dict[str, _Trusted] = {}
        self._required: tuple[bool, float] | None = None

    async def required(self) -> bool:
        if self._mode != "auto":
            return self._mode == "on"
        if self._open:
            return True
        now = self._clock()
        if self._required is None or self._required[1] <= now:
            self._required = (await self._store.any_active(), now + self._cache_s)
        return self._required[0]

    async def identify(self, presented: str) -> KeyRecord | None:
        """The active key ``presented`` is; None for anything else (malformed, unknown, revoked, wrong)."""
        parts = split_key(presented)
        if parts is None:
            await self._verify(_DECOY_HASH, presented[:64])
            return None
        key_id, secret = parts
        digest = _digest(secret)
        now = self._clock()
        trusted = self._trusted.get(key_id)
        if trusted is not None and trusted.until > now and hmac.compare_digest(trusted.digest, digest):
            return trusted.record
        record = await self._store.key_by_id(key_id)
        if record is None or not record.active:
            self._trusted.pop(key_id, None)
            await self._verify(record.secret_hash if record else _DECOY_HASH, secret)
            return None
        same = (
            trusted is not None
            and trusted.record.secret_hash == record.secret_hash
            and hmac.compare_digest(trusted.digest, digest)
        )
        if not same and not await self._verify(record.secret_hash, secret):
            return None
        self._trusted[key_id] = _Trusted(record, digest, now + self._cache_s)
        return record

    async def _verify(self, secret_hash: str, secret: str) -> bool:
        # argon2 holds the GIL only briefly; in a thread it does not stall the event loop
        return await asyncio.to_thread(secret_matches, secret_hash, secret)
