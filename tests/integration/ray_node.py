"""A real second Ray node joined to the session's Ray: ``ray start --address=<its GCS> --block``, a raylet of its own.

The node keeps its files in a temporary dir of its own (short: Ray's socket paths must fit in 107
bytes), so that nothing it writes, ``ray_current_cluster`` above all (which a later plain
``ray.init()`` on this machine would take for a cluster to join), is left in the head's ``/tmp/ray``.
It joins the head's session all the same: the session is the GCS's. ``ray.init()`` has put
``RAY_AUTH_MODE=token`` in this process's environment when the head asks for Ray's token; the
node inherits it and reads the same token.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import ray

RAY_CLI = Path(sys.executable).with_name("ray")


@dataclass
class RayNode:
    process: subprocess.Popen  # `ray start --block`: it leads the process group of the raylet and its agents
    node_id: str
    temp_dir: Path
    seen: list[psutil.Process] = field(default_factory=list)  # every process of it found so far

    def processes(self) -> list[psutil.Process]:
        """The node's processes now: ``ray start``, the raylet, its agents and its workers (each worker
        leads a process group of its own, so they are found as children, not by group)."""
        try:
            root = psutil.Process(self.process.pid)
            found = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self.seen += [proc for proc in found if proc not in self.seen]
        return found

    def kill(self) -> list[psutil.Process]:
        """SIGKILL to the node's process group, as to a machine that dies (nothing of it exits cleanly);
        the processes it had just before."""
        had = self.processes()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return had

    def alive(self) -> bool:
        return any(node["NodeID"] == self.node_id and node["Alive"] for node in ray.nodes())


def alive_node_ids() -> set[str]:
    return {node["NodeID"] for node in ray.nodes() if node["Alive"]}


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float) -> None:
    """A hang guard: ``condition()`` true within ``timeout_s``, else an AssertionError naming ``what``."""
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, f"{what}: not after {timeout_s:g} s"
        time.sleep(0.1)


@contextlib.contextmanager
def joined_node(num_cpus: int = 1, object_store_mb: int = 80, timeout_s: float = 90) -> Iterator[RayNode]:
    """A second node of the session's Ray until the block ends; then killed with every process it ran,
    and waited out until the GCS has marked it dead (so that nothing after is scheduled on it)."""
    before = alive_node_ids()
    temp_dir = Path(tempfile.mkdtemp(prefix="dxn-", dir="/tmp"))
    command = [
        str(RAY_CLI), "start", f"--address={ray.get_runtime_context().gcs_address}", f"--num-cpus={num_cpus}",
        "--num-gpus=0", f"--object-store-memory={object_store_mb * 1024 * 1024}", f"--temp-dir={temp_dir}",
        "--disable-usage-stats", "--block",
    ]  # fmt: skip
    with open(temp_dir / "ray-start.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    node: RayNode | None = None
    try:
        def joined() -> bool:
            assert process.poll() is None, f"ray start exited {process.returncode}: {_tail(temp_dir)}"
            return bool(alive_node_ids() - before)

        wait_until(joined, "the second node joined", timeout_s)
        node = RayNode(process, (alive_node_ids() - before).pop(), temp_dir)
        yield node
    finally:
        if node is not None:
            node.kill()
            for proc in node.seen:  # a worker the raylet's death did not take along (psutil checks pid reuse)
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
        elif process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if node is not None:
            wait_until(lambda: not node.alive(), "the second node marked dead", 60)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _tail(temp_dir: Path) -> str:
    return (temp_dir / "ray-start.log").read_text(errors="replace")[-2000:]
