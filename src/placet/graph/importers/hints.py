"""What deployment configuration hints at: the hosts a value names, the kind an image implies.

Shared by the Kubernetes and Compose importers.

**Addresses.** Kubernetes env vars and Compose environments are where call edges hide. A
value is split on whitespace, ``,`` and ``;`` into tokens; ``key=value`` tokens are looked
into; then a token is a *URL* (``redis://cache:6379/0``, ``http://user:pw@db/x``), a *host:port*
(``cart:7070``, ``1@kafka:9093``) or a *bare* name (``cart``). Bare names are weak
evidence: they count only when they are the whole value and name a known service, or when
the variable's name says it holds an address (:func:`counts`). Listen addresses and
loopback (``0.0.0.0``, ``*``, ``localhost``, ``127.0.0.1``) are never references.

**Kinds.** A container image (or, where the format gives nothing better, a name) whose
dash-separated words include a well-known database (:data:`DATASTORE_WORDS`) is a
``datastore``, one with a well-known broker (:data:`QUEUE_WORDS`) a ``queue``, unless a
word says it is a tool around one (``redis-exporter``, ``kafka-ui``: :data:`TOOL_WORDS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from placet.graph.model import NodeKind

_LABEL = r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_HOST_PORT = re.compile(r"^(?P<host>[^:/\s]+):(?P<port>\d{1,5})/?$")
_SPLIT = re.compile(r"[\s,;]+")
_ADDRESS_KEY = re.compile(
    r"(?:^|[_.-])(?:HOST|HOSTS|HOSTNAME|ADDR|ADDRS|ADDRESS|URL|URLS|URI|ENDPOINT|ENDPOINTS"
    r"|SERVER|SERVERS|BROKER|BROKERS|DSN)$",
    re.IGNORECASE,
)
LOCAL_HOSTS = frozenset({"localhost", "0.0.0.0", "127.0.0.1", "::", "::1", "*", "[::]"})
NOT_HOSTS = frozenset(
    {
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "none",
        "null",
        "enabled",
        "disabled",
        "auto",
        "default",
    }
)


@dataclass(frozen=True, slots=True)
class HostRef:
    """One host named by a value: ``host`` lowercased, the port and scheme when written."""

    host: str
    port: int | None
    scheme: str | None
    token: str
    bare: bool
    key: str | None = None  # the key of a ``key=value`` token it came from
    alone: bool = False  # the token is the whole value


def key_names_address(key: str) -> bool:
    """Does a variable called ``key`` hold an address (``*_HOST``, ``*_ADDR``, ``*_URL``...)?"""
    return bool(_ADDRESS_KEY.search(key.strip()))


def valid_host(host: str) -> bool:
    """Is ``host`` a DNS name containing a letter, or an IPv4 address (and not loopback, and
    not a word such as ``true`` or ``none`` that configuration uses for no host)?"""
    if host in LOCAL_HOSTS or host in NOT_HOSTS or host.startswith("127."):
        return False
    if _IPV4.match(host):
        return True
    return bool(_HOST.match(host)) and any(c.isalpha() for c in host)


def host_refs(value: str) -> list[HostRef]:
    """Every host that ``value`` names, in order (see the module docstring for the forms)."""
    found: list[HostRef] = []
    tokens = [t for t in _SPLIT.split(value.strip()) if t]
    for token in tokens:
        ref = _token_ref(token.strip("\"'()[]{}<>"))
        if ref is not None:
            found.append(replace(ref, alone=len(tokens) == 1))
    return found


def counts(ref: HostRef, known: bool, variable: str | None) -> bool:
    """Is ``ref`` a reference? Host:port and URLs are; a bare name only if it is the whole
    value and names a ``known`` service, or if its variable (or the ``key=`` before it)
    names an address."""
    if not ref.bare:
        return True
    return (known and ref.alone) or any(k and key_names_address(k) for k in (variable, ref.key))


def _token_ref(token: str, key: str | None = None) -> HostRef | None:
    if not token or "$" in token:
        return None
    scheme_at = token.find("://")
    if "=" in token and (scheme_at < 0 or token.index("=") < scheme_at):
        inner_key, inner = token.split("=", 1)
        return _token_ref(inner, inner_key)
    if scheme_at >= 0:
        return _url_ref(token)
    if "@" in token:
        token = token.rsplit("@", 1)[1]
    match = _HOST_PORT.match(token)
    if match:
        host = match["host"].lower()
        port = int(match["port"])
        return HostRef(host, port, None, token, False, key) if valid_host(host) else None
    host = token.lower().rstrip("/")
    return HostRef(host, None, None, token, True, key) if valid_host(host) else None


def _url_ref(token: str) -> HostRef | None:
    try:
        parts = urlsplit(token)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if not valid_host(host):
        return None
    return HostRef(host, port, parts.scheme.lower() or None, token, False)


DATASTORE_WORDS = frozenset(
    {
        "redis",
        "valkey",
        "keydb",
        "postgres",
        "postgresql",
        "postgis",
        "mysql",
        "mariadb",
        "mongo",
        "mongodb",
        "cassandra",
        "scylla",
        "memcached",
        "elasticsearch",
        "opensearch",
        "couchdb",
        "cockroach",
        "cockroachdb",
        "clickhouse",
        "influxdb",
    }
)
QUEUE_WORDS = frozenset({"kafka", "rabbitmq", "nats", "redpanda", "pulsar", "activemq"})
TOOL_WORDS = frozenset({"exporter", "operator", "ui", "admin", "commander", "proxy", "cli"})


def image_repository(image: str) -> str:
    """The last path part of an image reference without tag or digest (``redis:alpine`` ->
    ``redis``, ``ghcr.io/valkey-io/valkey:9`` -> ``valkey``)."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0].lower()


def kind_from_words(name: str) -> NodeKind | None:
    """``datastore`` or ``queue`` if ``name``'s words say so (module docstring), else None."""
    words = set(re.split(r"[-_.]+", name.lower()))
    if words & TOOL_WORDS:
        return None
    if words & DATASTORE_WORDS:
        return NodeKind.DATASTORE
    if words & QUEUE_WORDS:
        return NodeKind.QUEUE
    return None
