"""API keys: issuing, and the key ring's answers (an in-memory key store; no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from engine import api_keys
from engine.api_keys import IssuedKey, KeyRecord, KeyRing, issue_key, split_key

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class FakeKeys:
    """The key store port, in memory."""

    def __init__(self) -> None:
        self.rows: dict[str, KeyRecord] = {}
        self.reads = 0

    def add(self, issued: IssuedKey) -> None:
        self.rows[issued.key_id] = KeyRecord(issued.name, issued.key_id, issued.secret_hash, issued.admin, NOW)

    def revoke(self, key_id: str) -> None:
        self.rows[key_id] = replace(self.rows[key_id], revoked_at=NOW)

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        self.reads += 1
        return self.rows.get(key_id)

    async def any_active(self) -> bool:
        return any(row.active for row in self.rows.values())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification the ring runs, by the hash it checked against."""
    seen: list[str] = []
    real = api_keys.secret_matches

    def counted(secret_hash: str, secret: str) -> bool:
        seen.append(secret_hash)
        return real(secret_hash, secret)

    monkeypatch.setattr(api_keys, "secret_matches", counted)
    return seen


def test_a_key_is_shown_once_and_only_its_hash_is_kept() -> None:
    issued = issue_key("alice", admin=True)
    key_id, secret = split_key(issued.key) or ("", "")
    assert key_id == issued.key_id and issued.key.startswith(f"dex_{key_id}_")
    assert secret not in issued.secret_hash and issued.secret_hash.startswith("$argon2id$")
    assert api_keys.secret_matches(issued.secret_hash, secret)
    assert not api_keys.secret_matches(issued.secret_hash, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert issue_key("alice").key != issue_key("alice").key


@pytest.mark.parametrize("name", ["", "-lead", "a" * 65, "has space", "semi;colon", "ünï"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        issue_key(name)


@pytest.mark.parametrize("text", ["", "dex_", "dex_0123456789abcdef_short", "Bearer x", "dex_XYZ_" + "a" * 43])
def test_malformed_keys_do_not_split(text: str) -> None:
    assert split_key(text) is None


async def test_the_right_key_is_its_owner_and_is_verified_once(verifications: list[str]) -> None:
    store, clock = FakeKeys(), Clock()
    issued = issue_key("alice")
    store.add(issued)
    ring = KeyRing(store, cache_s=2.0, clock=clock)
    record = await ring.identify(issued.key)
    assert record is not None and record.name == "alice" and not record.admin
    assert await ring.identify(issued.key) == record
    assert len(verifications) == 1 and store.reads == 1
    clock.now += 5  # past the cache: the row is read again, the secret is not hashed again
    assert await ring.identify(issued.key) == record
    assert len(verifications) == 1 and store.reads == 2


async def test_every_refusal_costs_one_verification(verifications: list[str]) -> None:
    """Malformed, unknown, wrong and revoked keys all run argon2 once: the time taken tells nothing."""
    store, clock = FakeKeys(), Clock()
    issued = issue_key("alice")
    store.add(issued)
    ring = KeyRing(store, cache_s=0.0, clock=clock)
    _, secret = split_key(issued.key) or ("", "")
    wrong_secret = f"dex_{issued.key_id}_" + ("A" * 43 if secret != "A" * 43 else "B" * 43)
    unknown_id = f"dex_{'0' * 16}_{secret}"
    for presented in ("not a key", unknown_id, wrong_secret):
        before = len(verifications)
        assert await ring.identify(presented) is None
        assert len(verifications) == before + 1, presented
    store.revoke(issued.key_id)
    before = len(verifications)
    assert await ring.identify(issued.key) is None
    assert len(verifications) == before + 1


async def test_a_revoked_key_stops_working_when_the_cache_ends() -> None:
    store, clock = FakeKeys(), Clock()
    issued = issue_key("alice")
    store.add(issued)
    ring = KeyRing(store, cache_s=2.0, clock=clock)
    assert await ring.identify(issued.key) is not None
    store.revoke(issued.key_id)
    clock.now += 1
    assert await ring.identify(issued.key) is not None  # trusted for cache_s
    clock.now += 1.5
    assert await ring.identify(issued.key) is None
    clock.now += 10
    assert await ring.identify(issued.key) is None


async def test_a_cached_key_does_not_let_a_wrong_secret_through() -> None:
    store, clock = FakeKeys(), Clock()
    issued = issue_key("alice")
    store.add(issued)
    ring = KeyRing(store, cache_s=60.0, clock=clock)
    assert await ring.identify(issued.key) is not None
    _, secret = split_key(issued.key) or ("", "")
    other = f"dex_{issued.key_id}_" + ("A" * 43 if secret != "A" * 43 else "B" * 43)
    assert await ring.identify(other) is None
    assert await ring.identify(issued.key) is not None


async def test_when_keys_are_required() -> None:
    store, clock = FakeKeys(), Clock()
    auto = KeyRing(store, mode="auto", cache_s=2.0, clock=clock)
    assert not await auto.required()
    store.add(issue_key("alice"))
    assert not await auto.required()  # what it read holds for cache_s
    clock.now += 3
    assert await auto.required()
    assert await KeyRing(FakeKeys(), mode="auto", open_address=True).required()
    assert await KeyRing(FakeKeys(), mode="on").required()
    assert not await KeyRing(store, mode="off").required()
    with pytest.raises(ValueError):
        KeyRing(store, mode="maybe")
