"""``blpopq web``'s HTTP side (Starlette): the page, its state as JSON, and the actions.

    GET  /                   the dashboard (static/index.html; its script polls the state)
    GET  /api/state          the latest reading (state.py), at most one per second
    POST /api/dead/requeue   {"ids": [...]} or {"all": true}   (needs the token)
    POST /api/dead/purge     {"ids": [...]} or {"all": true}   (needs the token)
    POST /api/cancel         {"batch": "ID" or "last"}          (needs the token)
    GET  /static/...         the page's script and style, shipped in the package (no CDN)

Started without a token the dashboard is read-only and every action answers 403. With one,
an action is done only if the request (1) does not come from another site: an ``Origin``
other than the dashboard's own, or ``Sec-Fetch-Site: cross-site``, is refused; (2) carries
the token in the ``X-Blpopq-Token`` header (a header a cross-site form cannot set, and
script on another site cannot send here without a CORS preflight that we never answer);
(3) has a JSON body. ``Host`` must name the address served (TrustedHostMiddleware), so a
page whose DNS is rebound to 127.0.0.1 cannot read the state either.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import redis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..redis_errors import as_blpopq_error
from . import actions
from .state import Watcher

TOKEN_HEADER = "X-Blpopq-Token"
#: What an action answers: an HTTP status and the lines the terminal command would print.
Done = tuple[int, list[str]]
#: The page loads nothing but its own files, and no other site may frame it.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(
    watcher: Watcher,
    token: str | None,
    allowed_hosts: Sequence[str],
    keep_results: int = 0,
) -> Starlette:
    """The app over one Watcher (one namespace). ``allowed_hosts``: the names the ``Host``
    header may carry (``*`` for any). ``keep_results``: cancel trims results as daemons do."""
    dashboard = Dashboard(watcher, token, keep_results)
    routes = [
        Route("/", dashboard.index),
        Route("/api/state", dashboard.state),
        Route("/api/dead/{action}", dashboard.dead, methods=["POST"]),
        Route("/api/cancel", dashboard.cancel, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("blpopq.web", "static")]), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    return Starlette(routes=routes, middleware=middleware)


class Dashboard:
    """The endpoints, over one Watcher; the token (None: read-only) guards the actions."""

    def __init__(self, watcher: Watcher, token: str | None, keep_results: int) -> None:
        self.watcher = watcher
        self.token = token
        self.keep_results = keep_results
        self.page = resources.files("blpopq.web").joinpath("static/index.html").read_text("utf-8")

    def index(self, request: Request) -> Response:
        return HTMLResponse(self.page, headers=HEADERS)

    def state(self, request: Request) -> Response:
        try:
            return JSONResponse(self.watcher.state(), headers=HEADERS)
        except redis.RedisError as exc:
            message = str(as_blpopq_error(exc, "Redis failed"))
            return JSONResponse({"error": message}, status_code=503, headers=HEADERS)

    async def dead(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ("requeue", "purge"):
            return _answer(404, [f"no dead-letter action {action!r}: requeue or purge"])
        protocol = self.watcher.protocol
        return await self._act(request, lambda body: actions.dead(protocol, action, body))

    async def cancel(self, request: Request) -> Response:
        protocol, keep = self.watcher.protocol, self.keep_results
        return await self._act(request, lambda body: actions.cancel(protocol, body, keep=keep))

    async def _act(self, request: Request, run: Callable[[dict[str, Any]], Done]) -> Response:
        refusal = refuse(request, self.token)
        if refusal is not None:
            return refusal
        try:
            body = await request.json()
        except ValueError:
            return _answer(400, ["the body is not JSON"])
        if not isinstance(body, dict):
            return _answer(400, ["the body is not a JSON object"])
        try:
            code, lines = await run_in_threadpool(run, body)
        except redis.RedisError as exc:
            return _answer(503, [str(as_blpopq_error(exc, "Redis failed"))])
        self.watcher.invalidate()  # the next state shows what the action did
        return _answer(code, lines)


def _answer(code: int, lines: list[str]) -> JSONResponse:
    return JSONResponse({"ok": code == 200, "lines": lines}, status_code=code, headers=HEADERS)


def refuse(request: Request, token: str | None) -> Response | None:
    """Why this request may not act (a response to send), or None when it may."""
    if token is None:
        return _answer(403, ["read-only: start blpopq web with --token (or BLPOPQ_WEB_TOKEN)"])
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin != own:
        return _answer(403, [f"cross-site request refused: Origin {origin} is not {own}"])
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return _answer(403, ["cross-site request refused (Sec-Fetch-Site)"])
    given = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        return _answer(401, [f"the token is missing or wrong (header {TOKEN_HEADER})"])
    if not request.headers.get("content-type", "").startswith("application/json"):
        return _answer(415, ["send the body as application/json"])
    return None
