"""The web console's routes: the page at /, its files under /console/, nothing else, and off when api.console is."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from engine.settings import ApiSettings
from serve.app import create_app
from serve.routers.console import CONSOLE_DIR
from serve.services import Services


@contextlib.asynccontextmanager
async def client(console: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    # The console reads nothing but its options: the stores are never touched.
    services = Services(store=None, queue=None, bus=None, health=None, windows=None, tokens=None, engine=None,
                        options=ApiSettings(console=console))  # type: ignore[arg-type]  # fmt: skip

    async def factory() -> Services:
        return services

    app = create_app(factory)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_the_page_and_its_modules_are_served_from_this_origin_only() -> None:
    async with client() as http:
        page = await http.get("/")
        script = await http.get("/console/console.js")
        style = await http.get("/console/console.css")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/console/console.js">' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")


async def test_every_module_the_page_imports_is_there() -> None:
    imported = set()
    for module in CONSOLE_DIR.glob("*.js"):
        text = module.read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
        imported |= {line.split('"./')[1].split('"')[0] for line in text.splitlines()
                     if line.startswith("import ") and '"./' in line}  # fmt: skip
    async with client() as http:
        for name in sorted(imported):
            assert (await http.get(f"/console/{name}")).status_code == 200, name


@pytest.mark.parametrize("path", ["/console/nothing.js", "/console/..%2Fapp.py", "/console/index.html",
                                  "/console/.hidden.js", "/console/Console.JS"])  # fmt: skip
async def test_anything_else_under_console_is_404_in_the_error_shape(path: str) -> None:
    async with client() as http:
        reply = await http.get(path)
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "NOT_FOUND"


async def test_off_the_console_is_404_and_it_is_never_in_the_api_schema() -> None:
    async with client(console=False) as http:
        assert (await http.get("/")).status_code == 404
        assert (await http.get("/console/console.js")).status_code == 404
        paths = (await http.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and not any(p.startswith("/console") for p in paths)


def test_the_console_ships_as_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert 'serve = ["console/*"]' in pyproject
    assert {"index.html", "console.js", "console.css"} <= {p.name for p in CONSOLE_DIR.iterdir()}
