"""Tiny local servers for transport tests: they record what really arrived on the wire.

``LocalServer`` answers every request with what a function returns (an echo, a redirect, a token) and
keeps the requests it received; ``TrickleServer`` answers byte by byte, slower than any deadline.
Both listen on 127.0.0.1 only and stop with their ``with`` block.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as it arrived at a local server."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    raw_head: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Answer:
    """What a local server sends back."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Received], Answer]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        head = f"{self.requestline}\r\n{self.headers}"
        received = Received(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            raw_head=head,
        )
        with self.server.lock:
            self.server.received.append(received)
        answer = self.server.handler(received)
        payload = answer.body.encode() if isinstance(answer.body, str) else answer.body
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler
    received: list[Received]
    lock: threading.Lock


class LocalServer:
    """An HTTP/1.1 server on 127.0.0.1 answering with ``handler``; ``received`` lists what arrived."""

    def __init__(self, handler: Handler | None = None, port: int = 0) -> None:
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.handler = handler or (lambda request: Answer(200, b"{}"))
        self._httpd.received = []
        self._httpd.lock = threading.Lock()
        # A short poll: stopping waits for the poll in progress, 0.5 s by default, at every test's end.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self._httpd.lock:
            return list(self._httpd.received)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A port nobody listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TrickleServer:
    """A raw socket server that sends its answer one byte every ``interval`` seconds.

    ``answer`` is sent in full up to ``fast_bytes``, then byte by byte: a small ``fast_bytes`` trickles
    the status line and headers, one at the end of the headers trickles the body. ``slow_requests``
    requests are trickled; later ones are answered at once. Each recv of the client gets a byte well
    within its read timeout, so only a deadline for the whole answer stops the wait.
    """

    def __init__(
        self, answer: bytes, *, fast_bytes: int = 0, interval: float = 0.2, slow_requests: int = 1_000
    ) -> None:
        self.answer = answer
        self.fast_bytes = fast_bytes
        self.interval = interval
        self.slow_requests = slow_requests
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head.split(b"\r\n", 1)[0].decode("latin-1")

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            while not self._stop.is_set():
                line = self._read_request(conn)
                if line is None:
                    return
                with self._lock:
                    self.requests.append(line)
                    slow = len(self.requests) <= self.slow_requests
                if not slow:
                    conn.sendall(self.answer)
                    continue
                conn.sendall(self.answer[: self.fast_bytes])
                for index in range(self.fast_bytes, len(self.answer)):
                    if self._stop.wait(self.interval):
                        return
                    conn.sendall(self.answer[index : index + 1])

    def __enter__(self) -> TrickleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)


def http_answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A full HTTP/1.1 response as bytes (with Content-Length)."""
    lines = [f"HTTP/1.1 {status} Status"]
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def elapsed(start: float) -> float:
    return time.monotonic() - start
