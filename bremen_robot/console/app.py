"""``bremen console``'s web app (FastAPI): a read-only view of one campaign workspace.

Routes: ``/`` the page; ``/api/status`` the live status (polled by the page each second);
``/api/view`` the rest of the page as display strings (refreshed every few seconds and on each
stage change); ``/api/timeline`` and ``/api/registry`` the raw figures as JSON;
``/reviews/<id>`` a candidate's review page when ``bremen review`` wrote one;
``/static/console.js|css``. Only GET exists, and nothing here opens a workspace file for
writing (see :mod:`bremen_robot.console.state`).

Every value from the workspace reaches the browser as text: the page is rendered by Jinja2
with autoescape, the script writes with ``textContent`` only, and a Content-Security-Policy
allows scripts from this server's own files only, so even a value that slipped through could
not run.

Requests must name this machine in their Host header (an IP address, ``localhost`` or this
host's name): a page elsewhere that points its own DNS name at 127.0.0.1 (DNS rebinding) would
otherwise read every route as if it were this machine's browser.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bremen_robot.console.model import (
    AUDIT_COLUMNS,
    NOWRAP_COLUMNS,
    PENDING_COLUMNS,
    TIMELINE_COLUMNS,
    view_model,
)
from bremen_robot.console.state import WorkspaceView

HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# a review page embeds its own images, video and maybe script: it runs in an opaque origin
REVIEW_CSP = (
    "sandbox allow-scripts; default-src 'none'; img-src data:; media-src data: blob:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)
STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


def host_name(header: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower case."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else ""
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def host_allowed(header: str, names: Iterable[str]) -> bool:
    """True for a Host no other site's DNS can stand for: an IP address or one of ``names``.

    A rebinding attack needs a DNS name the attacker controls, so an address typed as such is
    safe whatever it is (the server only answers on the addresses it is bound to)."""
    name = host_name(header).rstrip(".")
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name in {n.lower().rstrip(".") for n in names}
    return True


def local_names(extra: Iterable[str] = ()) -> set[str]:
    """``localhost``, this machine's names and ``extra`` (the ``--host`` it was started with)."""
    return {"localhost", socket.gethostname(), socket.getfqdn(), *extra}


def create_app(workspace: Path, host_names: Iterable[str] = ()) -> Any:
    """The app for one workspace (``workspace`` must exist; the CLI checks it). Requests whose
    Host is neither an IP address nor ``localhost``/this machine's name/``host_names`` get 400."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    view = WorkspaceView(Path(workspace).resolve())
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    app = FastAPI(title="bremen console", docs_url=None, redoc_url=None, openapi_url=None)
    names = local_names(host_names)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        host = request.headers.get("host", "")
        if not host_allowed(host, names):
            response = PlainTextResponse(
                f"Host '{host[:100]}' is not this machine: the console answers only to an IP address, "
                "localhost or this host's name (DNS rebinding); open http://127.0.0.1:PORT/",
                status_code=400,
            )
        else:
            response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        html = env.get_template("console.html").render(
            workspace=str(view.root),
            status=view.status(),
            model=view_model(view),
            timeline_columns=TIMELINE_COLUMNS,
            pending_columns=PENDING_COLUMNS,
            audit_columns=AUDIT_COLUMNS,
            nowrap=NOWRAP_COLUMNS,
        )
        return HTMLResponse(html)

    @app.get("/api/view")
    def model() -> JSONResponse:
        return JSONResponse(view_model(view))

    @app.get("/api/status")
    def status() -> JSONResponse:
        return JSONResponse(view.status())

    @app.get("/api/timeline")
    def timeline() -> JSONResponse:
        return JSONResponse(view.timeline())

    @app.get("/api/registry")
    def registry() -> JSONResponse:
        return JSONResponse(view.registry())

    @app.get("/reviews/{policy_id}")
    def review(policy_id: str) -> FileResponse:
        path = view.review_file(policy_id)
        if path is None:
            raise HTTPException(
                404, f"no review page for '{policy_id}'; bremen review ID --workspace {view.root} writes it"
            )
        return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": REVIEW_CSP})

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "not found")
        return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name])

    return app
