"""Raydium CPMM's split of the trade fee: the protocol's and the fund's shares, owed by the pool.

In raydium-cp-swap the trade fee (``ceil(amount_in * trade_fee_rate / 1e6)``) is paid into the
input vault with the rest of the input, but two shares of it are owed
(``protocol_fees_token_*``, ``fund_fees_token_*``), collected later by the admin, and left out of
the reserves the pool prices with (``vault_amount_without_fee``):

* ``protocol_fee = floor(trade_fee * protocol_fee_rate / 1e6)``,
* ``fund_fee = floor(trade_fee * fund_fee_rate / 1e6)``,

each computed from the whole trade fee. The rates are millionths of the trade fee, not of the
trade (Raydium's standard configs: 120000 and 40000, i.e. 12 % and 4 % of the fee).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SHARE_DEN = 1_000_000  # FEE_RATE_DENOMINATOR_VALUE
FIELDS = ("protocol_fee_share", "fund_fee_share")


@dataclass(frozen=True, slots=True)
class FeeShares:
    """The shares of a pool's trade fee owed to the protocol and the fund, in millionths."""

    protocol: int = 0
    fund: int = 0

    def __post_init__(self) -> None:
        for name, value in (("protocol_fee_share", self.protocol), ("fund_fee_share", self.fund)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SHARE_DEN:
                raise ValueError(f"{name} must be an integer from 0 to {SHARE_DEN} (millionths of the fee), "
                                 f"got {value!r}")  # fmt: skip
        if self.protocol + self.fund > SHARE_DEN:  # update_config asserts the same
            raise ValueError(f"protocol_fee_share + fund_fee_share must not exceed {SHARE_DEN} (the whole fee), "
                             f"got {self.protocol} + {self.fund}")  # fmt: skip

    def split(self, trade_fee: int) -> tuple[int, int]:
        """(protocol fee, fund fee) of ``trade_fee``, each rounded down as the program does."""
        return trade_fee * self.protocol // SHARE_DEN, trade_fee * self.fund // SHARE_DEN


NO_SHARES = FeeShares()


def parse_fields(fee_bps: float, fields: Mapping[str, Any]) -> FeeShares:
    """A cpmm pool's ``protocol_fee_share`` and ``fund_fee_share`` (both optional, default 0)."""
    return FeeShares(fields.get("protocol_fee_share", 0), fields.get("fund_fee_share", 0))
