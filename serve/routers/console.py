"""The web console: static files (no build step, nothing from the internet) at ``/`` and ``/console/...``.

Hidden from the OpenAPI schema, open to every caller (the page asks for an API
key itself and sends it with each API call), and off, a 404, when
``api.console`` is false.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from serve.dependencies import ServicesDep
from serve.errors import ApiError

router = APIRouter(include_in_schema=False)

CONSOLE_DIR = Path(str(resources.files("serve") / "console"))
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg|png|ico)$")
_MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml", "png": "image/png",
                "ico": "image/x-icon"}  # fmt: skip
# Everything the page loads comes from this origin; its WebSockets too.
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_REVALIDATE = {"Cache-Control": "no-cache"}  # the files change with the engine: check the ETag each time


def _console_on(services: ServicesDep) -> None:
    if not services.options.console:
        raise ApiError(404, "NOT_FOUND", "the web console is off on this engine (api.console)")


def _not_found(path: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"no such console file: {path}", {"path": path})


@router.get("/")
async def console_page(services: ServicesDep) -> FileResponse:
    _console_on(services)
    return FileResponse(
        CONSOLE_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**_REVALIDATE, "Content-Security-Policy": _PAGE_POLICY, "X-Content-Type-Options": "nosniff"},
    )


@router.get("/console/{name}")
async def console_asset(name: str, services: ServicesDep) -> FileResponse:
    _console_on(services)
    match = _ASSET_NAME.match(name)
    if match is None or not (CONSOLE_DIR / name).is_file():
        raise _not_found(f"/console/{name}")
    return FileResponse(
        CONSOLE_DIR / name,
        media_type=_MEDIA_TYPES[match.group(1)],
        headers={**_REVALIDATE, "X-Content-Type-Options": "nosniff"},
    )
