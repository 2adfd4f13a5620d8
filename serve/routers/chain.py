"""The chain: ``GET /api/chain``, the simulated chain now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from engine.errors import ChainOff
from serve.dependencies import ServicesDep, limit_reads
from serve.errors import error_example
from serve.presenters.chain import chain_view

router = APIRouter(tags=["chain"], dependencies=[Depends(limit_reads)])


@router.get(
    "/api/chain",
    summary="The chain now",
    description="The current slot and block height, the congestion preset and the other traffic's load (in "
    "blocks), percentiles of the compute-unit prices landed in the last 150 blocks (micro-lamports per CU: "
    "what `priorityFee` levels bid), and counts since the chain started: submitted, landed, failed on chain, "
    "dropped (expired or reverted), sandwiched. `{\"enabled\": false}` when the engine runs without the chain "
    "(zero-latency mode: a transaction lands at once).",
    responses={503: error_example(503, "ENGINE_UNAVAILABLE", "the engine did not answer")},
)
async def chain(services: ServicesDep) -> dict[str, Any]:
    try:
        info = await services.engine.chain_info()
    except ChainOff:
        info = None
    return chain_view(info)
