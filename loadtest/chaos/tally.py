"""What the load and the faults saw, kept for the check of the books and the summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# (seq, status) of one order, as its WebSocket or its recorded history gives them
Steps = list[tuple[int, str]]


@dataclass
class Tally:
    accepted: list[str] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)  # "503 DATABASE_UNAVAILABLE" -> n
    transport_errors: Counter = field(default_factory=Counter)
    faults: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, note)
    fault_errors: list[str] = field(default_factory=list)
    watched: dict[str, Steps] = field(default_factory=dict)  # order id -> (seq, status) seen
    ws_reconnects: int = 0
    ws_stalls: int = 0  # sockets silent for 45 s (then reconnected)
    ws_incomplete: list[str] = field(default_factory=list)
