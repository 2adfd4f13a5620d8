"""The machine and the code a benchmark ran on, for the report's first lines."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return model


def machine() -> dict[str, Any]:
    import ray

    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "commit": f"{commit}{' (+ uncommitted changes)' if dirty else ''}" if commit else "unknown",
        "cpu": cpu_model(),
        "cores": psutil.cpu_count(),
        "memoryGiB": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "os": platform.platform(),
        "load1": round(os.getloadavg()[0], 2),
    }
