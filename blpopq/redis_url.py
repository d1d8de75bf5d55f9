"""Redis URLs, read in one place and without I/O: which deployment, which nodes, TLS options,
and each URL fit for a log line (passwords masked).

    redis://[user:pass@]host[:port][/db]          one server (rediss://: over TLS)
    unix://[user:pass@]/path/to/socket[?db=N]      one server on a unix socket
    redis+sentinel://[user:pass@]host:port[,host:port...]/SERVICE[/DB]
                                                   the current primary of SERVICE, asked of
                                                   those sentinels (rediss+sentinel://: TLS)
    redis+cluster://[user:pass@]host:port[,host:port...]
                                                   a Redis Cluster seeded by those nodes
                                                   (rediss+cluster://: TLS); database 0 only

``user:pass`` authenticate to the server (with Sentinel: to the primary; the sentinels' own
password is the query parameter ``sentinel_password``). TLS takes redis-py's own query
parameters, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``
(``required``, the default, ``optional`` or ``none``) and ``ssl_check_hostname``. Any other
query parameter is refused: redis-py would pass it on to the socket layer, where a typo
fails at the first connection instead of at start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigError

#: Query parameters blpopq reads from a URL, by the schemes they fit.
TLS_PARAMETERS = frozenset(
    {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname"}
)
_COMMON_PARAMETERS = frozenset({"db", "password", "username"})
_SENTINEL_PARAMETERS = frozenset({"sentinel_password", "sentinel_username"})
_CERT_REQS = ("required", "optional", "none")
_SCHEMES = {
    "redis": "single",
    "rediss": "single",
    "unix": "single",
    "redis+sentinel": "sentinel",
    "rediss+sentinel": "sentinel",
    "redis+cluster": "cluster",
    "rediss+cluster": "cluster",
}
SCHEMES_TEXT = (
    "redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, redis+cluster:// "
    "or rediss+cluster://"
)


@dataclass(frozen=True)
class RedisTarget:
    """What a URL names. ``url`` is what redis-py's ``from_url`` gets for one server."""

    kind: str  # "single" | "sentinel" | "cluster"
    url: str = field(repr=False)  # holds the password
    tls: bool
    nodes: tuple[tuple[str, int], ...] = ()  # sentinel: the sentinels; cluster: the seeds
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: redis-py keyword arguments from the query: TLS options, the sentinels' credentials.
    options: dict[str, str | bool] = field(default_factory=dict, repr=False)

    @property
    def tls_options(self) -> dict[str, str | bool]:
        return {k: v for k, v in self.options.items() if k in TLS_PARAMETERS}


def parse_url(url: str) -> RedisTarget:
    """The target ``url`` names, or ConfigError (exit 2) saying what is wrong with it."""
    parts = urlsplit(url)
    kind = _SCHEMES.get(parts.scheme)
    if kind is None:
        raise ConfigError(f"Redis URL {mask_url(url)!r} must start with {SCHEMES_TEXT}")
    tls = parts.scheme.startswith("rediss")
    options = _query_options(url, parts.query, kind, tls)
    if kind == "single":
        return RedisTarget(kind, url, tls, options=options)
    if kind == "cluster":
        return _cluster(url, parts.netloc, parts.path, tls, options)
    return _sentinel(url, parts.netloc, parts.path, tls, options)


def _query_options(url: str, query: str, kind: str, tls: bool) -> dict[str, str | bool]:
    allowed = _COMMON_PARAMETERS | TLS_PARAMETERS
    if kind == "sentinel":
        allowed |= _SENTINEL_PARAMETERS
    options: dict[str, str | bool] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        where = f"Redis URL {mask_url(url)!r}"
        if name not in allowed:
            raise ConfigError(
                f"{where}: unknown query parameter {name!r} "
                f"(blpopq reads {', '.join(sorted(allowed))})"
            )
        if name in TLS_PARAMETERS and not tls:
            raise ConfigError(
                f"{where}: {name} needs TLS: use rediss:// (or rediss+sentinel://, rediss+cluster://)"
            )
        if name == "ssl_cert_reqs" and value not in _CERT_REQS:
            raise ConfigError(f"{where}: ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
        if name == "ssl_check_hostname":
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{where}: ssl_check_hostname must be true or false")
            options[name] = value.lower() in ("true", "1", "yes")
        elif name not in _COMMON_PARAMETERS or kind != "single":
            options[name] = value
    return options


def _cluster(
    url: str, netloc: str, path: str, tls: bool, options: dict[str, str | bool]
) -> RedisTarget:
    where = f"Redis URL {mask_url(url)!r}"
    nodes, user, secret = _nodes_and_credentials(where, netloc, options)
    db_text = path.strip("/") or str(options.pop("db", "0"))
    if db_text != "0":
        raise ConfigError(f"{where}: a Redis Cluster has only database 0, not {db_text!r}")
    return RedisTarget("cluster", url, tls, nodes, "", 0, user, secret, options)


def _nodes_and_credentials(
    where: str, netloc: str, options: dict[str, str | bool]
) -> tuple[tuple[tuple[str, int], ...], str | None, str | None]:
    """The host:port list and the user and password, from the URL or its query."""
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = tuple(_host_port(where, text) for text in hosts.split(","))
    user = unquote(username) or str(options.pop("username", "")) or None
    secret = unquote(password) or str(options.pop("password", "")) or None
    options.pop("username", None)
    options.pop("password", None)
    return nodes, user, secret


def _sentinel(
    url: str, netloc: str, path: str, tls: bool, options: dict[str, str | bool]
) -> RedisTarget:
    where = f"Redis URL {mask_url(url)!r}"
    nodes, user, secret = _nodes_and_credentials(where, netloc, options)
    names = [unquote(p) for p in path.split("/") if p]
    if not names or len(names) > 2:
        raise ConfigError(f"{where}: name the service: redis+sentinel://host:port/SERVICE[/DB]")
    db_text = names[1] if len(names) == 2 else str(options.pop("db", "0"))
    if not db_text.isdigit():
        raise ConfigError(f"{where}: database {db_text!r} is not a number")
    return RedisTarget("sentinel", url, tls, nodes, names[0], int(db_text), user, secret, options)


def _host_port(where: str, text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: {text!r} is not host:port")
    return host.strip("[]"), int(port)


#: A query parameter that holds a secret: password=, sentinel_password=, ssl_password=.
_SECRET_QUERY = re.compile(r"((?:^|[?&])[a-z_]*password=)[^&#]*")


def mask_url(url: str) -> str:
    """The URL with every password (user info, and ``*password=`` query parameters) replaced
    by ``***``, fit for logs and error messages; any scheme, any number of hosts."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _SECRET_QUERY.sub(r"\1***", url)
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    userinfo, at, hosts = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    masked_tail = _SECRET_QUERY.sub(r"\1***", tail)
    return f"{scheme}{sep}{userinfo}{at}{hosts}{masked_tail}"
