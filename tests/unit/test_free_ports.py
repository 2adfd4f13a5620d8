"""Ports picked for servers lie outside the kernel's ephemeral range, so nothing binding port 0 takes them."""

from __future__ import annotations

import socket

from localservers.ports import HOST, ephemeral_range, free_port


def test_a_free_port_lies_outside_the_ephemeral_range_and_binds() -> None:
    low, high = ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert not low <= port <= high
        with socket.socket() as sock:
            sock.bind((HOST, port))


def test_a_preferred_port_is_kept_while_free_and_replaced_once_taken() -> None:
    port = free_port()
    assert free_port(port) == port
    with socket.socket() as holder:
        holder.bind((HOST, port))
        holder.listen()
        other = free_port(port)
    assert other != port


def test_the_range_is_read_from_the_kernel() -> None:
    low, high = ephemeral_range()
    assert 1_024 <= low < high <= 65_535
