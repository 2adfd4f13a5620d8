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


def _git(*args: str, strip: bool = True) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip() if strip else out


def cpu_model() -> str:
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return model


def dirty_files(porcelain: str) -> list[str]:
    """The paths ``git status --porcelain`` names (untracked files too): empty for a clean tree."""
    # each line is "XY path": two status letters (either may be a space), a space, the path
    return [line[3:].strip() for line in porcelain.splitlines() if len(line) > 3]


def tree_state() -> dict[str, Any]:
    """The commit the run is on and whether the tree is clean (else the files that are not)."""
    dirty = dirty_files(_git("status", "--porcelain", strip=False))
    return {"commit": _git("rev-parse", "--short", "HEAD") or "unknown", "clean": not dirty, "dirty": dirty}


def tree_text(tree: dict[str, Any]) -> str:
    """``abc1234, clean tree`` or ``abc1234 with uncommitted changes: a, b``."""
    if tree["clean"]:
        return f"{tree['commit']}, clean tree"
    shown = ", ".join(tree["dirty"][:12]) + (f" and {len(tree['dirty']) - 12} more" if len(tree["dirty"]) > 12 else "")
    return f"{tree['commit']} with uncommitted changes (not a clean tree): {shown}"


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
