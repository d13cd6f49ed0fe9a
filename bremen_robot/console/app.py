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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bremen_robot.console.model import AUDIT_COLUMNS, PENDING_COLUMNS, TIMELINE_COLUMNS, view_model
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


def create_app(workspace: Path) -> Any:
    """The app for one workspace (``workspace`` must exist; the CLI checks it)."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    view = WorkspaceView(Path(workspace).resolve())
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    app = FastAPI(title="bremen console", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
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
