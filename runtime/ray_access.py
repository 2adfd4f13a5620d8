"""How to get into the Ray dashboard: Ray 2.60 turns token authentication on for local clusters.

The token is never printed; the banner says where it is and the command that shows it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TOKEN_PATH = Path.home() / ".ray" / "auth_token"


def dashboard_access(environ: dict[str, str] | None = None, default_path: Path = DEFAULT_TOKEN_PATH) -> str:
    """One line for the banner: whether the dashboard asks for a token, and where that token is."""
    env = dict(os.environ if environ is None else environ)
    mode = env.get("RAY_AUTH_MODE", "").lower()
    if mode == "disabled" or (mode != "token" and not default_path.exists()):
        return "no token needed (Ray's token authentication is off)"
    if env.get("RAY_AUTH_TOKEN"):
        where = "the RAY_AUTH_TOKEN environment variable"
        show = "echo $RAY_AUTH_TOKEN"
    elif env.get("RAY_AUTH_TOKEN_PATH"):
        where = env["RAY_AUTH_TOKEN_PATH"]
        show = f"cat {where}"
    else:
        where = str(default_path)
        show = "RAY_AUTH_MODE=token .venv/bin/ray get-auth-token"
    return f"it asks for Ray's token: the one in {where} (shown by `{show}`)"


def ray_metrics_url(configured_port: int, *, joined: bool = False) -> str | None:
    """Where Ray's own Prometheus endpoint is (the ``ray_*`` metrics of every actor and replica).

    The port Ray bound on this node when Ray is up (``0`` in the settings: it picked one), else the
    configured one (which a joined cluster never took from us); None when neither is known. A joined
    cluster's node is named by its address.
    """
    host, port = "127.0.0.1", 0 if joined else configured_port
    node = _this_node()
    if node is not None and node.get("MetricsExportPort"):
        port = int(node["MetricsExportPort"])
        if joined:
            host = str(node.get("NodeManagerAddress") or host)
    return f"http://{host}:{port}/metrics" if port else None


def _this_node() -> dict | None:
    import ray

    if not ray.is_initialized():
        return None
    try:
        me = ray.get_runtime_context().get_node_id()
        return next((node for node in ray.nodes() if node.get("NodeID") == me), None)
    except Exception:  # noqa: BLE001 — a banner line is not worth failing a start for
        return None
