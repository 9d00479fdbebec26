"""Reading one compose service's fields: its kind, published ports, build directory.

Split from :mod:`compose` to keep each module small; the rules are in its docstring.
"""

from __future__ import annotations

import os
import re
from typing import Any

from placet.graph.importers.hints import image_repository, kind_from_words
from placet.graph.importers.yamllines import MarkedMap
from placet.graph.model import INTERNET_FACING, NodeFact, NodeKind

EXPOSED = "exposed"
_LOOPBACK = re.compile(r"^(?:127\.|localhost$|::1$|\[::1\]$)")


def published_ports(svc: MarkedMap) -> tuple[set[str], list[str]]:
    """The exposure tags and the ``published`` descriptions of a service's ``ports``."""
    tags: set[str] = set()
    published: list[str] = []
    for port in svc.get("ports") or []:
        if isinstance(port, MarkedMap):
            host_ip, host_port = str(port.get("host_ip") or ""), port.get("published")
            target = str(port.get("target", ""))
        else:
            spec = str(port).split("/", 1)[0]
            host_ip = ""
            if spec.startswith("["):
                host_ip, _, spec = spec[1:].partition("]:")
            parts = spec.rsplit(":", 2)
            target = parts[-1]
            host_port = parts[-2] if len(parts) > 1 else None
            host_ip = parts[0] if len(parts) == 3 else host_ip
        if _LOOPBACK.match(host_ip):
            published.append(f"{host_ip}:{host_port or ''}->{target} (loopback)")
            continue
        tags.add(INTERNET_FACING if host_port else EXPOSED)
        where = f"{host_ip or '0.0.0.0'}:{host_port or '(ephemeral)'}"
        published.append(f"{where}->{target}")
    return (tags - {EXPOSED} if INTERNET_FACING in tags else tags), published


def service_kind(name: str, svc: MarkedMap) -> NodeKind:
    """The kind a service's image (else its name) suggests, else ``service``."""
    image = str(svc.get("image") or "")
    by_image = kind_from_words(image_repository(image)) if image else None
    return by_image or kind_from_words(name) or NodeKind.SERVICE


def merge_definitions(first: NodeFact, other: NodeFact) -> NodeFact:
    """One node from two definitions of a service (an override file and its base)."""
    main, extra = (
        (other, first)
        if other.attributes.get("image") and not first.attributes.get("image")
        else (first, other)
    )
    attributes = {**extra.attributes, **main.attributes}
    attributes["published"] = [*main.attributes["published"], *extra.attributes["published"]]
    attributes["compose_file"] = main.attributes["compose_file"]
    return NodeFact(
        main.id,
        main.kind,
        main.provenance,
        name=main.name,
        tags=tuple(sorted({*main.tags, *extra.tags})),
        source_paths=tuple(dict.fromkeys([*main.source_paths, *extra.source_paths])),
        attributes=attributes,
    )


def build_paths(build: Any) -> tuple[str, ...]:
    """The directory a service is built from, relative to the compose file."""
    if isinstance(build, str):
        context, dockerfile = build, None
    elif isinstance(build, MarkedMap):
        context, dockerfile = str(build.get("context") or "."), build.get("dockerfile")
    else:
        return ()
    if "://" in context or context.startswith("git@"):
        return ()
    path = os.path.join(context, os.path.dirname(str(dockerfile))) if dockerfile else context
    rel = os.path.normpath(path).replace(os.sep, "/")
    return () if rel in (".", "") or rel.startswith("..") or os.path.isabs(rel) else (rel,)
