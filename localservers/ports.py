"""Free TCP ports on 127.0.0.1 that nothing else on the machine will take before we bind them.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from its ephemeral range, the same
range every outgoing connection and every server binding port 0 draws from (a local Ray binds one
per worker process). Between picking such a port and a server binding it, another process may take
it: a Serve proxy then fails with "Failed to bind". So we pick below that range, where only servers
asked for a port by number listen.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 20_000  # above the well-known and most registered fixed ports


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux's default where it cannot be read)."""
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32_768, 60_999


def _candidates() -> list[int]:
    low, high = ephemeral_range()
    ports = list(range(_LOWEST, low)) if low - _LOWEST >= 1_000 else list(range(high + 1, 65_536))
    random.shuffle(ports)  # two sessions at once rarely try the same port first
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        # as the servers we start do: a port left in TIME_WAIT is free to them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it is free, else a free port outside the ephemeral range."""
    if preferred and _bindable(preferred):
        return preferred
    for port in _candidates():
        if _bindable(port):
            return port
    raise OSError("no free port on 127.0.0.1 outside the ephemeral range")
