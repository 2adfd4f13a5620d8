"""The HTTP API and WebSocket status feed (FastAPI), run by Ray Serve or any ASGI server.

    from serve.app import create_app

    app = create_app(services_factory)  # any zero-argument async callable returning Services

The composition root (``runtime``) supplies the factory wired to the real
stores and the engine; the API itself knows them only as ports.

Submodules are imported on demand so that ``import serve.<x>`` stays cheap.
"""
