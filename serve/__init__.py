"""The HTTP API and WebSocket status feed (FastAPI), run by Ray Serve or any ASGI server.

    from serve.app import create_app
    from serve.services import ServicesFromSettings

    app = create_app(ServicesFromSettings(settings))          # Ray actors (Serve)
    app = create_app(ServicesFromSettings(settings, gateway="local"))  # routing in-process

Submodules are imported on demand so that ``import serve.<x>`` stays cheap.
"""
