"""Fake services for ``serve.metrics.engine_figures`` (unit tests only): every family gets samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from engine.lifecycle_figures import ExecutorFigures, LifecycleFigures
from engine.records import OldestOpenOrder


def busy_executor(index: int, orders: int, *, running: int = 1, slots: int = 5) -> ExecutorFigures:
    """An executor that confirmed ``orders`` orders on meteora and retried one SLIPPAGE_EXCEEDED."""
    figures = LifecycleFigures()
    for _ in range(orders):
        for previous, to, seconds in (("pending", "routing", 0.02), ("routing", "building", 0.004),
                                      ("building", "submitted", 0.003), ("submitted", "confirmed", 2.5)):  # fmt: skip
            figures.stage(previous, to, seconds)
        figures.finished("confirmed", "meteora", 2.6)
    figures.retried("SLIPPAGE_EXCEEDED")
    return ExecutorFigures(str(index), slots, running, figures.snapshot())


CHAIN_INFO: dict[str, Any] = {
    "slot": 1_200, "blockHeight": 1_150, "slotTimeS": 0.4, "congestion": "busy", "load": 0.93,
    "recentFees": {"p25": 1_000, "p50": 25_000, "p75": 120_000, "p95": 900_000, "samples": 40}, "pending": 2,
    "submitted": 9, "landed": 6, "failed": 1, "dropped": 2, "expired": 1, "reverted": 1, "sandwiched": 1,
    "skippedSlots": 50, "mevRate": 0.2,
}  # the shape of ``engine.chain_desk.ChainDesk.info``


@dataclass
class FakeEngine:
    executors: list[ExecutorFigures] = field(default_factory=lambda: [busy_executor(0, 3), busy_executor(1, 2)])
    down: bool = False
    chain: dict[str, Any] | None = field(default_factory=lambda: dict(CHAIN_INFO))  # None: the chain is off
    chain_down: bool = False

    async def dispatcher_stats(self) -> dict[str, Any]:
        self._maybe_down()
        return {"running": 2, "started": 7, "completed": 5, "failed": 0, "retried": 2, "concurrency": 10}

    async def trigger_stats(self) -> dict[str, Any]:
        self._maybe_down()
        return {"armed": 1, "snipers": 0, "fired": 2, "expired": 0}

    async def pool_summaries(self) -> list[Any]:
        self._maybe_down()
        return [SimpleNamespace(pool_id="raydium:SOL-USDC", spot_price=150.0, reserves={"SOL": 10**12, "USDC": 1.5e11})]

    async def executor_figures(self) -> list[ExecutorFigures]:
        return self.executors

    async def chain_info(self) -> dict[str, Any]:
        from engine.errors import ChainOff, EngineUnavailable

        if self.chain_down:
            raise EngineUnavailable("the chain is away")
        if self.chain is None:
            raise ChainOff("the engine runs without the chain")
        return self.chain

    def _maybe_down(self) -> None:
        if self.down:
            from engine.errors import EngineUnavailable

            raise EngineUnavailable("the engine is away")


class FakeStore:
    async def count_by_status(self) -> dict[str, int]:
        return {"pending": 1, "confirmed": 5}

    async def oldest_unfinished(self) -> OldestOpenOrder | None:
        return OldestOpenOrder("o-1", "pending", 4.5, 1.0)


class FakeOrderFigures:
    async def count_by_status_and_dex(self) -> dict[tuple[str, str], int]:
        return {("pending", "none"): 1, ("confirmed", "meteora"): 3, ("confirmed", "raydium"): 2}


class FakeQueue:
    async def depth(self) -> Any:
        return SimpleNamespace(to_json=lambda: {"waiting": 1, "pending": 0, "delayed": 2, "total": 3})


def fake_services(engine: FakeEngine | None = None, *, by_dex: bool = True) -> Any:
    return SimpleNamespace(
        store=FakeStore(), queue=FakeQueue(), engine=engine or FakeEngine(),
        order_figures=FakeOrderFigures() if by_dex else None,
    )  # fmt: skip


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text: ``(name, sorted labels) -> value``."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip
