"""How the report writes a number, a latency row and a CPU account."""

from __future__ import annotations

from typing import Any

MS_HEAD = "| | n | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|"


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def ms_row(name: str, s: dict[str, Any]) -> str:
    return f"| {name} | {s['n']} | {fmt(s['p50'])} | {fmt(s.get('p90'))} | {fmt(s['p99'])} | {fmt(s['max'])} |"


def cpu_line(c: dict[str, Any]) -> str:
    """The long account, under a section of the report."""
    top = ", ".join(f"{k} {v:.2f}" for k, v in list(c["engineByRole"].items())[:6])
    return (f"CPU over {c['seconds']:.0f} s, in cores of {c['cores']}: engine {c['engineCores']:.2f} "
            f"({top}); this client {c['clientCores']:.2f}; other processes on the machine "
            f"{c['otherCores']:.2f}; machine busy {c['machineCores']:.2f}.")  # fmt: skip


def cpu_text(c: dict[str, Any]) -> str:
    """The short account, in a "limited by" cell."""
    top = ", ".join(f"{k} {v:.2f}" for k, v in list(c["engineByRole"].items())[:3])
    return (f"CPU: machine {c['machineCores']:.2f} of {c['cores']} cores busy (engine {c['engineCores']:.2f}: {top}; "
            f"client {c['clientCores']:.2f}; others {c['otherCores']:.2f})")  # fmt: skip
