"""The Ray Serve deployment around the FastAPI app.

One replica by default, ``num_cpus=0`` (it waits on I/O), with
``max_ongoing_requests`` sized for the WebSockets it holds: every open socket
occupies a slot for its whole life. The app is built inside the replica
(ingress from a builder) from the services factory the composition root
hands in, which carries only plain data.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from engine.settings import EngineSettings
from serve.services import ServicesFactory

APP_NAME = "dexengine"
DEPLOYMENT_NAME = "api"
MAX_ONGOING_REQUESTS = 2000
# One proxy, on the head: the API's address is the head's on any cluster. Serve's default, a proxy on
# every node with a replica, would also bind api.host:port on the other nodes (two nodes of one machine
# cannot); the replicas still go wherever Serve puts them.
PROXY_LOCATION = "HeadOnly"


def build_application(services: ServicesFactory, *, replicas: int = 1) -> Any:
    """The bound Serve application on ``services`` (called in each replica at startup)."""

    def build_app() -> Any:
        from serve.app import create_app

        return create_app(services)

    @serve.deployment(
        name=DEPLOYMENT_NAME,
        num_replicas=replicas,
        max_ongoing_requests=MAX_ONGOING_REQUESTS,
        ray_actor_options={"num_cpus": 0},
        health_check_period_s=5,
    )
    @serve.ingress(build_app)
    class Api:
        pass

    return Api.bind()


def run_serve(settings: EngineSettings, services: ServicesFactory, *, blocking: bool = False) -> None:
    """Start Serve's proxy on the configured address and deploy the API (idempotent)."""
    serve.start(proxy_location=PROXY_LOCATION, http_options={"host": settings.api.host, "port": settings.api.port})
    serve.run(build_application(services), name=APP_NAME, route_prefix="/", blocking=blocking)
