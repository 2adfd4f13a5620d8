"""py-spy on the busiest engine processes, summed up as own and inclusive time."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from loadtest.benchmark.processes import role

SAMPLE_HZ = 50
# frames every stack has (event loop, thread main): left out of the inclusive counts
BORING = ("run_forever", "_run_once", "_run (events.py)", "main (", "<module>", "run (threading",
          "_bootstrap", "main_loop", "run_until_complete", "select (selectors.py)")  # fmt: skip


def py_spy_available() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


async def profile(pids: list[int], seconds: float, out_dir: Path, engine_pid: int) -> list[dict[str, Any]]:
    """py-spy (sampling, non-blocking) on a few Python processes at once; the top
    functions by own time (leaf frames) of each."""
    exe = py_spy_available()
    if exe is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for pid in pids:
        try:
            label = role(psutil.Process(pid), engine_pid)
        except psutil.NoSuchProcess:
            continue
        path = out_dir / f"py-spy-{pid}.txt"
        proc = await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(SAMPLE_HZ),
            "--format", "raw", "--output", str(path), "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        jobs.append((pid, label, path, proc))
    results = []
    for pid, label, path, proc in jobs:
        try:
            _, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            continue
        if not path.exists():
            results.append({"pid": pid, "role": label, "error": (err or b"").decode()[-300:]})
            continue
        results.append({"pid": pid, "role": label, **summarize_stacks(path, seconds * SAMPLE_HZ)})
    return results


def summarize_stacks(path: Path, possible_samples: float) -> dict[str, Any]:
    """Leaf-frame (own time) and inclusive counts from py-spy's collapsed stacks."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        leaf[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count
    return {
        "samples": total,
        "busyShare": round(total / possible_samples, 3) if possible_samples else None,
        "topOwn": [(f, round(c / total, 3)) for f, c in leaf.most_common(8)] if total else [],
        "topInclusive": [(f, round(c / total, 3)) for f, c in _interesting(inclusive).most_common(12)] if total else [],
    }


def _frame(text: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = text.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name


def _interesting(inclusive: Counter[str]) -> Counter[str]:
    """Inclusive counts without the frames every stack has (event loop, thread main)."""
    return Counter({f: c for f, c in inclusive.items() if not any(b in f for b in BORING)})
