"""blpopq web: serve the live dashboard of one namespace (needs blpopq[web])."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from typing import TextIO

from ..config import Settings
from ..connection import mask_url
from ..errors import EXIT_OK, ConfigError
from .common import connect, recorded_stops
from .helptext import about
from .parser import Subparsers, common_options

WEB_INSTALL = "pip install 'blpopq[web]'"
TOKEN_ENV = "BLPOPQ_WEB_TOKEN"
#: Host header values accepted when serving on loopback (DNS rebinding: any other name).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def register(commands: Subparsers) -> None:
    web = commands.add_parser("web", **about("web"))
    web.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs a token)",
    )
    web.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free one)"
    )
    web.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"allow the actions (dead requeue/purge, cancel) to requests carrying it (env "
        f"{TOKEN_ENV}, which ps does not show; default none: read-only)",
    )
    common_options(web)
    web.set_defaults(handler=cmd_web)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def options(args: argparse.Namespace, environ: dict[str, str]) -> tuple[str | None, list[str]]:
    """(token, allowed Host names); ConfigError for a non-loopback address without a token."""
    token = args.token if args.token is not None else environ.get(TOKEN_ENV) or None
    if token is not None and not token.strip():
        raise ConfigError("--token must not be empty")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a port number (0-65535)")
    if is_loopback(args.host):
        return token, list(LOOPBACK_NAMES)
    if token is None:
        raise ConfigError(
            f"--host {args.host} is not a loopback address: serving it needs a token "
            f"(--token or {TOKEN_ENV}), or put a reverse proxy in front of 127.0.0.1"
        )
    return token, ["*"]


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


def cmd_web(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    token, allowed = options(args, dict(os.environ))
    try:
        import uvicorn

        from ..web.app import create_app
        from ..web.state import Watcher
    except ImportError as exc:
        raise ConfigError(
            f"blpopq web needs Starlette and uvicorn ({exc.msg}): {WEB_INSTALL}"
        ) from None
    protocol = connect(settings)
    sock = _listen(args.host, args.port)
    app = create_app(Watcher(protocol, actions=token is not None), token, allowed,
                     keep_results=settings.keep_results)  # fmt: skip
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    mode = "actions need the token" if token else "read-only"
    sys.stderr.write(
        f"blpopq web: serving namespace {settings.namespace} of Redis {mask_url(settings.url)} "
        f"at http://{shown}:{port}/ ({mode})\n"
    )
    sys.stderr.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again under the
    # handlers it found: these only count it, so a stop ends with 0, as a daemon's does.
    with recorded_stops():
        uvicorn.Server(config).run(sockets=[sock])
    return EXIT_OK
