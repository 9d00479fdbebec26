"""A real local HTTP server for runner tests: records requests, answers as it is told."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    """What the server received, and how many failures it answers before a 200."""

    fail_first: int = 0
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Local:
    """A running local server: its base URL and what it saw."""

    url: str
    seen: Seen


def _handler(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with seen.lock:
                seen.requests.append((self.command, self.path, dict(self.headers), body))
                count = len(seen.requests)
            if self.path.startswith("/status/"):
                status = int(self.path.rsplit("/", 1)[1])
            else:
                status = 503 if count <= seen.fail_first else 200
            payload = f"{self.command} {self.path} -> {status} token=abc123secret\n".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@contextmanager
def local_http(fail_first: int = 0) -> Iterator[Local]:
    """Serve on 127.0.0.1 (a free port) in a thread until the block ends."""
    seen = Seen(fail_first=fail_first)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Local(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
