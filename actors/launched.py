"""What a restarted actor asks the launchpad: the pools launched so far (their handles, pairs and tokens)."""

from __future__ import annotations

import logging
from typing import Any

import ray

LAUNCHPAD_NAME = "launchpad"
log = logging.getLogger(__name__)


async def launched_pools(launchpad: tuple[str, str] | None) -> list[dict[str, Any]]:
    """``[{poolId, pair, handle, token}]`` from the launchpad ``(name, namespace)``; [] when there is none yet."""
    if launchpad is None:
        return []
    name, namespace = launchpad
    try:
        handle = ray.get_actor(name, namespace=namespace)
    except ValueError:
        return []  # the engine is starting: the launchpad tells everyone once it runs
    try:
        return await handle.launched.remote()
    except Exception:  # noqa: BLE001 — the launchpad re-tells everyone when it restores
        log.warning("the launchpad did not say what was launched", exc_info=True)
        return []
