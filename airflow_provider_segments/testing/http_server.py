"""The test server's HTTP machinery: dispatch to fake-API apps, a request log, and fault injection.

Platform-agnostic: each fake API is an *app* (:mod:`airflow_provider_segments.testing.base`);
:class:`SegmentsTestServer` wires the WalkMe and Zendesk apps to one server.

Control endpoints, never logged and never subject to faults:

- ``POST /_sandbox/faults`` with the arguments of :meth:`LocalHTTPServer.inject_fault` as JSON
  (201, the stored fault); ``GET /_sandbox/faults`` lists pending faults; ``DELETE`` clears them.
- ``GET /_sandbox/requests`` returns the request log as a JSON array; ``DELETE`` clears it.
- ``POST /_sandbox/reset`` clears faults, the log and every app's state (204).

The server speaks HTTP/1.1 with an exact ``Content-Length`` on every response, so a
``requests.Session`` keeps its connections alive as it would against the real API.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_segments.testing.base import (
    App,
    HttpError,
    Request,
    Response,
    empty_response,
    json_response,
    method_not_allowed,
)
from airflow_provider_segments.testing.faults import Fault

__all__ = ["CONTROL_PREFIX", "MAX_BODY_BYTES", "LocalHTTPServer"]

CONTROL_PREFIX = "/_sandbox/"
"""Paths under this prefix steer the test server itself; they are not logged and never faulted."""

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Bodies above this size are refused with 413 (25,000 ids of 100 characters are about 2.6 MB)."""


class LocalHTTPServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server that offers each request to its apps in turn.

    It also keeps the request log and the pending faults; both are guarded by one lock, so tests
    can read them while clients are talking to the server.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        server_address: tuple[str, int],
        apps: Iterable[App] = (),
        *,
        log_requests: bool = False,
    ) -> None:
        host = server_address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.apps: list[App] = []
        self.log_requests = log_requests
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: list[dict[str, Any]] = []
        self._connections: set[socket.socket] = set()
        self._connection_serial = 0
        self._in_flight = 0
        self._control = _ControlApp(self)
        for app in apps:
            self.add_app(app)
        super().__init__(server_address, _RequestHandler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer`` does (it can take seconds)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def add_app(self, app: App) -> None:
        """Plug in another fake API; apps are asked in the order they were added."""
        if not callable(getattr(app, "handle", None)):
            raise TypeError(f"{app!r} is not a test server app: it has no handle(request) method")
        self.apps.append(app)

    # -- faults ---------------------------------------------------------------------------------

    def inject_fault(
        self,
        path_prefix: str,
        status: int | None = None,
        *,
        count: int = 1,
        retry_after: str | None = None,
        body: str | None = None,
        delay: float = 0.0,
        drop_connection: bool = False,
        method: str | None = None,
        lose_response: bool = False,
        truncate_body: bool = False,
        skip: int = 0,
    ) -> Fault:
        """Make the next ``count`` requests whose path starts with ``path_prefix`` misbehave.

        A matching request is first held ``delay`` seconds; then its connection is closed without a
        response if ``drop_connection``, else it gets ``status`` (with ``Retry-After: retry_after``
        and ``body`` when given, a JSON ``{"message": <reason>}`` otherwise), else it is handled
        normally. ``lose_response`` handles the request (the app applies it) and then closes the
        connection without answering, as when a response is lost on the way back;
        ``truncate_body`` handles it and sends the headers with only half of the body before closing
        (a connection reset mid-response). ``skip`` lets that many matching requests through first
        (to fail, say, the third chunk). ``method`` limits the fault to one HTTP method. Faults are
        used in the order they were injected; ``/_sandbox/`` paths are never faulted.
        """
        fault = Fault(
            path_prefix,
            status,
            count=count,
            retry_after=retry_after,
            body=body,
            delay=delay,
            drop_connection=drop_connection,
            method=method,
            lose_response=lose_response,
            truncate_body=truncate_body,
            skip=skip,
        )
        self.add_fault(fault)
        return fault

    def add_fault(self, fault: Fault) -> None:
        """Queue an already built :class:`Fault`."""
        with self._lock:
            self._faults.append(fault)

    def faults(self) -> list[dict[str, Any]]:
        """The pending faults, oldest first, with their remaining counts."""
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Consume one use of the oldest fault matching this request, if any."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    if fault.skip > 0:  # let this one through untouched
                        fault.skip -= 1
                        return None
                    fault.count -= 1
                    if fault.count <= 0:
                        del self._faults[index]
                    return fault
        return None

    # -- request log ----------------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        """Append one entry to the request log."""
        with self._lock:
            self._log.append(entry)

    def request_log(self) -> list[dict[str, Any]]:
        """A copy of the request log, oldest first (control endpoints are not logged).

        Each entry has ``method``, ``path``, ``status`` (``None`` when the connection was dropped),
        ``time`` (epoch seconds), ``connection`` (serial number of the TCP connection, to check
        keep-alive), ``fault`` (``"status"``, ``"delay"``, ``"drop_connection"``, ``"lose_response"``
        or ``"truncate_body"``) when a fault hit it, ``in_flight`` (API requests being handled when
        it arrived, itself included), and what the app added (WalkMe writes: ``action``, ``ids``;
        Zendesk: ``auth``, writes ``action`` and ``ids``, lists ``pagination``).
        """
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_request_log(self) -> None:
        """Forget every logged request."""
        with self._lock:
            self._log.clear()

    def reset(self) -> None:
        """Clear faults, the request log and the state of every app that has ``reset()``."""
        with self._lock:
            self._faults.clear()
            self._log.clear()
        for app in self.apps:
            reset = getattr(app, "reset", None)
            if callable(reset):
                reset()

    def in_flight(self, delta: int) -> int:
        """Count a request in (``+1``) or out (``-1``); the API requests being handled now."""
        with self._lock:
            self._in_flight += delta
            return self._in_flight

    # -- dispatch -------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        """Answer a request with the first app that claims its path (404 JSON when none does)."""
        try:
            for app in (self._control, *self.apps):
                response = app.handle(request)
                if response is not None:
                    return response
        except HttpError as exc:
            return exc.response()
        except Exception as exc:  # a bug in an app: answer 500 and show the traceback on stderr
            traceback.print_exc(file=sys.stderr)
            return json_response(500, {"message": f"Test server error: {type(exc).__name__}: {exc}"})
        return json_response(404, {"message": "Not found"})

    # -- connections ----------------------------------------------------------------------------

    def track(self, connection: socket.socket, open_: bool) -> int:
        """Remember open client connections so :meth:`close_connections` can end idle keep-alives.

        Returns the connection's serial number (1 for the first connection accepted, then 2, ...).
        """
        with self._lock:
            if open_:
                self._connections.add(connection)
                self._connection_serial += 1
                return self._connection_serial
            self._connections.discard(connection)
            return 0

    def close_connections(self) -> None:
        """Shut down every open client connection (their handler threads then finish)."""
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (read timeouts, dropped sockets); print anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _ControlApp:
    """The ``/_sandbox/`` endpoints that steer the server itself (faults, log, reset)."""

    def __init__(self, server: LocalHTTPServer) -> None:
        self.server = server

    def handle(self, request: Request) -> Response | None:
        path = request.path.rstrip("/")
        if path == "/_sandbox/faults":
            if request.method == "GET":
                return json_response(200, self.server.faults())
            if request.method == "DELETE":
                self.server.clear_faults()
                return empty_response()
            if request.method != "POST":
                return method_not_allowed(("GET", "POST", "DELETE"))
            try:
                fault = Fault.from_json(request.json())
            except (ValueError, TypeError) as exc:
                raise HttpError(400, {"message": f"Invalid fault: {exc}"}) from exc
            self.server.add_fault(fault)
            return json_response(201, fault.to_json())
        if path == "/_sandbox/requests":
            if request.method == "GET":
                return json_response(200, self.server.request_log())
            if request.method == "DELETE":
                self.server.clear_request_log()
                return empty_response()
            return method_not_allowed(("GET", "DELETE"))
        if path == "/_sandbox/reset":
            if request.method != "POST":
                return method_not_allowed(("POST",))
            self.server.reset()
            return empty_response()
        return None


class _RequestHandler(BaseHTTPRequestHandler):
    """Reads a request fully, applies faults, asks the apps, logs, and writes the response."""

    server: LocalHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "SegmentsTestServer/1.0"
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.connection_number = self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    # One entry point for the common methods; the apps answer those they do not support with 405.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        method = self.command.upper()
        split = urlsplit(self.path)
        path = split.path or "/"
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send(json_response(400, {"message": f"Unreadable request body: {exc}"}), method)
            return
        except _BodyTooLargeError:
            self.close_connection = True
            self._send(json_response(413, {"message": "Request body too large"}), method)
            return
        request = Request(
            method=method,
            path=path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        control = path.startswith(CONTROL_PREFIX)
        if control:
            self._handle(request, method, path, control)
            return
        # Logged as ``in_flight``: API requests being handled when this one arrived, itself included.
        request.log["in_flight"] = self.server.in_flight(+1)
        try:
            self._handle(request, method, path, control)
        finally:
            self.server.in_flight(-1)

    def _handle(self, request: Request, method: str, path: str, control: bool) -> None:
        fault = None if control else self.server.take_fault(method, path)
        fault_kind: str | None = None
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
                fault_kind = "delay"
            if fault.drop_connection:
                self.close_connection = True
                self.server.record(_log_entry(request, None, "drop_connection", self.connection_number))
                return
        if fault is not None and fault.status is not None:
            response = fault.response()
            fault_kind = "status"
        else:
            response = self.server.dispatch(request)
        if fault is not None and fault.lose_response:
            self.close_connection = True
            self.server.record(_log_entry(request, response.status, "lose_response", self.connection_number))
            return
        if fault is not None and fault.truncate_body:
            fault_kind = "truncate_body"
        if not control:
            self.server.record(_log_entry(request, response.status, fault_kind, self.connection_number))
        self._send(response, method, truncate=fault_kind == "truncate_body")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        length = int(length_header)
        if length < 0:
            raise ValueError(f"negative Content-Length {length}")
        if length > MAX_BODY_BYTES:
            raise _BodyTooLargeError
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(65537)
            size = int(size_line.split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyTooLargeError
            parts.append(self.rfile.read(size))
            self.rfile.readline(65537)  # the CRLF after each chunk

    def _send(self, response: Response, method: str, *, truncate: bool = False) -> None:
        status = response.status
        has_body = status >= 200 and status not in (204, 304)
        try:
            self.send_response(status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if has_body:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if has_body and method != "HEAD" and response.body:
                if truncate:  # promise the whole body, send half, hang up
                    self.wfile.write(response.body[: len(response.body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(response.body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client gave up (e.g. its read timeout fired)


class _BodyTooLargeError(Exception):
    """The request body is larger than :data:`MAX_BODY_BYTES`."""


def _log_entry(request: Request, status: int | None, fault: str | None, connection: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "time": time.time(),
        "connection": connection,
    }
    if fault is not None:
        entry["fault"] = fault
    entry.update(request.log)
    return entry
