"""One interface for acting as a principal: over HTTP, or directly on a local data dir."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from placet.domain.errors import PlacetError
from placet.domain.principals import Principal

if TYPE_CHECKING:
    from placet.service.control_plane import ControlPlane


class ServerError(PlacetError):
    """The server failed or could not be reached (exit 1, not the caller's fault)."""


class Backend(Protocol):
    """What the CLI (and scripts) do with proposals, wherever the control plane is."""

    def propose(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]: ...
    def get(self, proposal_id: str) -> dict[str, Any]: ...
    def list(self, state: str | None, agent: str | None, limit: int) -> list[dict[str, Any]]: ...
    def approve(self, proposal_id: str, digest: str | None, reason: str = "") -> dict[str, Any]: ...
    def deny(self, proposal_id: str, reason: str) -> dict[str, Any]: ...
    def cancel(self, proposal_id: str, reason: str) -> dict[str, Any]: ...
    def evidence(self, proposal_id: str) -> dict[str, Any]: ...


class LocalBackend:
    """Acts on a local control plane; with no token it is the operator (read and export only)."""

    def __init__(self, cp: ControlPlane, token: str | None) -> None:
        self.cp = cp
        self.token = token

    def _who(self) -> Principal:
        return self.cp.principals.authenticate(self.token)

    def _reader(self) -> Principal | None:
        return self._who() if self.token else None

    def propose(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        return self.cp.proposals.propose(self._who(), body, idempotency_key)[0]

    def get(self, proposal_id: str) -> dict[str, Any]:
        return self.cp.proposals.get(self._reader(), proposal_id)

    def list(self, state: str | None, agent: str | None, limit: int) -> list[dict[str, Any]]:
        return self.cp.proposals.list(self._reader(), state, agent, limit)

    def approve(self, proposal_id: str, digest: str | None, reason: str = "") -> dict[str, Any]:
        return self.cp.proposals.approve(self._who(), proposal_id, digest, reason)

    def deny(self, proposal_id: str, reason: str) -> dict[str, Any]:
        return self.cp.proposals.deny(self._who(), proposal_id, reason)

    def cancel(self, proposal_id: str, reason: str) -> dict[str, Any]:
        return self.cp.proposals.cancel(self._who(), proposal_id, reason)

    def evidence(self, proposal_id: str) -> dict[str, Any]:
        return self.cp.proposals.evidence(self._reader(), proposal_id)


class ApiError(PlacetError):
    """A problem+json answer from the server; ``status`` tells whose fault it was."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class HttpBackend:
    """Acts through the HTTP API with a bearer token."""

    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the JSON answer, or ApiError / ServerError."""
        return self._call(method, path, **kwargs)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach {self.http.base_url}: {exc}") from None
        if response.status_code == 204:
            return None
        if response.status_code < 400:
            return response.json()
        try:
            detail = str(response.json().get("detail") or response.reason_phrase)
        except ValueError:
            detail = response.text or response.reason_phrase
        raise ApiError(response.status_code, detail)

    def propose(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self._call("POST", "/v1/proposals", json=body, headers=headers)
        return result

    def get(self, proposal_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/proposals/{proposal_id}")
        return result

    def list(self, state: str | None, agent: str | None, limit: int) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"state": state, "agent": agent, "limit": limit}.items() if v}
        items: list[dict[str, Any]] = self._call("GET", "/v1/proposals", params=params)["items"]
        return items

    def approve(self, proposal_id: str, digest: str | None, reason: str = "") -> dict[str, Any]:
        body = {k: v for k, v in {"digest": digest, "reason": reason}.items() if v}
        result: dict[str, Any] = self._call(
            "POST", f"/v1/proposals/{proposal_id}/approve", json=body
        )
        return result

    def deny(self, proposal_id: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/v1/proposals/{proposal_id}/deny", json={"reason": reason}
        )
        return result

    def cancel(self, proposal_id: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/v1/proposals/{proposal_id}/cancel", json={"reason": reason}
        )
        return result

    def evidence(self, proposal_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/proposals/{proposal_id}/evidence")
        return result


class HttpGraph:
    """The System Graph through the HTTP API: the same calls as the local GraphService."""

    def __init__(self, server: str, token: str | None) -> None:
        self.api = HttpBackend(server, token, timeout=300.0)

    def import_paths(
        self,
        paths: Sequence[Path],
        fmt: str | None = None,
        source: str | None = None,
        by: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Upload the files under ``paths`` (paths relative to each argument) as one source."""
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        listed = [(p, f) for p in paths for f in _files_under(p)]
        for done, (root, file) in enumerate(listed, 1):
            relative = file.name if root.is_file() else file.relative_to(root).as_posix()
            if len(paths) > 1:  # keep files of different arguments apart
                relative = f"{paths.index(root)}-{root.name}/{relative}"
            files.append(("files", (relative, file.read_bytes(), "application/octet-stream")))
            if progress is not None:
                progress(done, len(listed))
        data = {"source": source or ",".join(str(p.resolve()) for p in paths)}
        if fmt:
            data["format"] = fmt
        result: dict[str, Any] = self.api._call("POST", "/v1/graph/imports", data=data, files=files)
        return result

    def _get(self, endpoint: str, **params: Any) -> Any:
        return self.api._call(
            "GET", endpoint, params={k: v for k, v in params.items() if v is not None}
        )

    def show(self, fmt: str = "json") -> Any:
        if fmt == "json":
            return self._get("/v1/graph")["graph"]
        response = self.api.http.get("/v1/graph", params={"format": fmt})
        if response.status_code >= 400:
            raise ApiError(response.status_code, str(response.json().get("detail")))
        return response.text

    def versions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._get("/v1/graph/versions")["items"]
        return items

    def conflicts(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/v1/graph/conflicts")
        return result

    def blast(
        self, nodes: Sequence[str], depth: int | None = None, kinds: Sequence[str] | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._get(
            "/v1/graph/blast", node=list(nodes), depth=depth, kind=list(kinds) if kinds else None
        )
        return result

    def dependencies(self, node: str, depth: int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/v1/graph/dependencies", node=node, depth=depth)
        return result

    def owners(self, paths: Sequence[str]) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/v1/graph/owners", path=list(paths))
        return result

    def reach(self, node: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/v1/graph/reach", node=node)
        return result


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        from placet.graph.importers.registry import walk

        return walk([path])
    from placet.domain.errors import InputError

    raise InputError(str(path), "no such file or directory")
