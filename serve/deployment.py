"""The Ray Serve deployment around the FastAPI app.

One replica by default, ``num_cpus=0`` (it waits on I/O), with
``max_ongoing_requests`` sized for the WebSockets it holds: every open socket
occupies a slot for its whole life. The app is built inside the replica
(ingress from a builder), so nothing heavy is pickled.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from engine.settings import EngineSettings

APP_NAME = "dexengine"
DEPLOYMENT_NAME = "api"
MAX_ONGOING_REQUESTS = 2000


def build_application(settings: dict[str, Any] | None = None, *, replicas: int = 1) -> Any:
    """The bound Serve application; ``settings`` None means: from the environment."""
    conf = settings

    def build_app() -> Any:
        from serve.app import create_app
        from serve.services import ServicesFromSettings

        return create_app(ServicesFromSettings(conf))

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


def run_serve(settings: EngineSettings, *, blocking: bool = False) -> None:
    """Start Serve's proxy on 127.0.0.1 and deploy the API (idempotent)."""
    serve.start(http_options={"host": settings.api_host, "port": settings.api_port})
    serve.run(
        build_application(settings.for_actors()),
        name=APP_NAME,
        route_prefix="/",
        blocking=blocking,
    )


def app_builder(args: dict[str, Any]) -> Any:
    """For ``serve run configs/serve.yaml``: start what is missing, then the API.

    PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, else
    they are started beside this process; the engine's actors are created on
    the Ray cluster ``serve run`` connected to.
    """
    import atexit
    import contextlib

    from actors.system import start_actors
    from engine.runtime import servers

    stack = contextlib.ExitStack()
    resolved = stack.enter_context(servers(EngineSettings(**args)))
    atexit.register(stack.close)
    start_actors(resolved)
    return build_application(resolved.for_actors())
