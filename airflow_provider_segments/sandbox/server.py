"""The sandbox HTTP server: dispatch to fake-API apps, a request log, and fault injection.

The machinery here is platform-agnostic. Each fake API is an *app* (see
:mod:`airflow_provider_segments.sandbox.base`); :class:`SandboxServer` only wires the apps together,
so the Zendesk Help Center fake is one more app beside the WalkMe one, not a second server.

Control endpoints, never logged and never subject to faults:

- ``POST /_sandbox/faults`` with the arguments of :meth:`SandboxHTTPServer.inject_fault` as JSON
  (201, the stored fault); ``GET /_sandbox/faults`` lists pending faults; ``DELETE`` clears them.
- ``GET /_sandbox/requests`` returns the request log as a JSON array; ``DELETE`` clears it.
- ``POST /_sandbox/reset`` clears faults, the log and every app's state (204).

The server speaks HTTP/1.1 with an exact ``Content-Length`` on every response, so a
``requests.Session`` keeps its connections alive as it would against the real API.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_segments.sandbox.base import (
    App,
    HttpError,
    Request,
    Response,
    empty_response,
    json_response,
    method_not_allowed,
)
from airflow_provider_segments.sandbox.walkme import WalkMeApp
from airflow_provider_segments.sandbox.zendesk import ZendeskApp

__all__ = [
    "CONTROL_PREFIX",
    "MAX_BODY_BYTES",
    "Fault",
    "SandboxHTTPServer",
    "SandboxServer",
    "is_loopback_host",
]

CONTROL_PREFIX = "/_sandbox/"
"""Paths under this prefix steer the sandbox itself; they are not logged and never faulted."""

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Bodies above this size are refused with 413 (25,000 ids of 100 characters are about 2.6 MB)."""


@dataclass
class Fault:
    """One injected fault: how the next ``count`` requests matching it misbehave."""

    path_prefix: str
    status: int | None = None
    count: int = 1
    retry_after: str | None = None
    body: str | None = None
    delay: float = 0.0
    drop_connection: bool = False
    method: str | None = None
    lose_response: bool = False
    truncate_body: bool = False
    skip: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.path_prefix, str) or not self.path_prefix.startswith("/"):
            raise ValueError(f"path_prefix must be a path starting with '/', got {self.path_prefix!r}")
        if self.status is not None and (
            isinstance(self.status, bool) or not isinstance(self.status, int) or not 100 <= self.status <= 599
        ):
            raise ValueError(f"status must be an HTTP status code between 100 and 599, got {self.status!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"count must be a positive integer, got {self.count!r}")
        if isinstance(self.retry_after, int | float) and not isinstance(self.retry_after, bool):
            self.retry_after = str(self.retry_after)
        if self.retry_after is not None and not isinstance(self.retry_after, str):
            raise ValueError(f"retry_after must be a string (seconds or HTTP date), got {self.retry_after!r}")
        if self.body is not None and not isinstance(self.body, str):
            raise ValueError("body must be a string")
        if isinstance(self.delay, bool) or not isinstance(self.delay, int | float) or self.delay < 0:
            raise ValueError(f"delay must be a number of seconds >= 0, got {self.delay!r}")
        if not isinstance(self.drop_connection, bool):
            raise ValueError(f"drop_connection must be true or false, got {self.drop_connection!r}")
        if self.method is not None:
            if not isinstance(self.method, str) or not self.method.strip():
                raise ValueError(f"method must be an HTTP method name, got {self.method!r}")
            self.method = self.method.strip().upper()
        if isinstance(self.skip, bool) or not isinstance(self.skip, int) or self.skip < 0:
            raise ValueError(f"skip must be a whole number >= 0, got {self.skip!r}")
        for flag in ("lose_response", "truncate_body"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        if not (
            self.status is not None
            or self.delay
            or self.drop_connection
            or self.lose_response
            or self.truncate_body
        ):
            raise ValueError(
                "a fault needs a status, a delay > 0, drop_connection, lose_response or truncate_body"
            )

    @classmethod
    def from_json(cls, payload: Any) -> Fault:
        """Build a fault from the JSON object posted to ``/_sandbox/faults``; raise ValueError if bad."""
        if not isinstance(payload, dict):
            raise ValueError("the fault must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(
                f"unknown fault field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if "path_prefix" not in payload:
            raise ValueError("path_prefix is required")
        return cls(**payload)

    def matches(self, method: str, path: str) -> bool:
        """Tell whether a request with this method and path triggers the fault."""
        return path.startswith(self.path_prefix) and (self.method is None or self.method == method)

    def to_json(self) -> dict[str, Any]:
        """Describe the fault (with its remaining ``count``) as a JSON-ready dict."""
        return asdict(self)

    def response(self) -> Response:
        """The response sent instead of the real one when the fault has a status."""
        if self.status is None:
            raise ValueError("this fault has no status to answer with")
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        if self.body is not None:
            content_type = "application/json" if _looks_like_json(self.body) else "text/plain"
            headers["Content-Type"] = f"{content_type}; charset=utf-8"
            return Response(self.status, self.body.encode("utf-8"), headers)
        try:
            message = HTTPStatus(self.status).phrase
        except ValueError:
            message = "Injected fault"
        return json_response(self.status, {"message": message}, headers)


def _looks_like_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class SandboxHTTPServer(ThreadingHTTPServer):
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
        super().__init__(server_address, _SandboxRequestHandler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer`` does (it can take seconds)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def add_app(self, app: App) -> None:
        """Plug in another fake API; apps are asked in the order they were added."""
        if not callable(getattr(app, "handle", None)):
            raise TypeError(f"{app!r} is not a sandbox app: it has no handle(request) method")
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
        or ``"truncate_body"``) when a fault hit
        it, ``in_flight`` (API requests being handled when it arrived, itself included), and
        whatever the app added (WalkMe segment writes add ``action`` and ``ids``; Zendesk
        calls add ``auth``, writes ``action`` and ``ids``, lists ``pagination``).
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
            return json_response(500, {"message": f"Sandbox error: {type(exc).__name__}: {exc}"})
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

    def __init__(self, server: SandboxHTTPServer) -> None:
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


class _SandboxRequestHandler(BaseHTTPRequestHandler):
    """Reads a request fully, applies faults, asks the apps, logs, and writes the response."""

    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "SegmentsSandbox/1.0"
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


def is_loopback_host(host: str) -> bool:
    """Tell whether every address ``host`` resolves to is a loopback address."""
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False
    addresses = {info[4][0].split("%", 1)[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(address).is_loopback for address in addresses)


class SandboxServer:
    """A local server speaking the WalkMe Segments API and the Zendesk Help Center User Segments API.

    Both fakes share one port: :attr:`walkme` and :attr:`zendesk` hold their state. For tests and the demo.

    Use it as a context manager: entering starts ``serve_forever`` in a daemon thread, leaving stops
    it. The socket is bound at construction, so :attr:`url` is known before :meth:`start`.

    :param host: interface to bind; loopback only unless ``allow_remote`` (the credentials are public).
    :param port: TCP port; ``0`` picks a free one.
    :param token_ttl: lifetime in seconds of the access tokens the fake token endpoint issues.
    :param allow_remote: allow binding a non-loopback interface.
    :param log_requests: print an access-log line per request on stderr.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token_ttl: float = 86400,
        allow_remote: bool = False,
        log_requests: bool = False,
    ) -> None:
        host = host.strip().strip("[]")
        if not allow_remote and not is_loopback_host(host):
            raise ValueError(
                f"refusing to bind the sandbox to {host!r}: it is not a loopback address and the sandbox "
                "credentials are public; use 127.0.0.1, or pass allow_remote=True (--allow-remote)"
            )
        self.walkme = WalkMeApp(token_ttl=token_ttl)
        """The fake WalkMe Segments API; its state is readable in-process by tests."""
        self.zendesk = ZendeskApp()
        """The fake Zendesk Help Center User Segments API; its state is readable in-process by tests."""
        self.httpd = SandboxHTTPServer((host, port), [self.walkme, self.zendesk], log_requests=log_requests)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound host."""
        return str(self.httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when constructed with ``port=0``)."""
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve in a daemon thread (idempotent); return self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.httpd.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the listening socket (idempotent)."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.close_connections()
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def add_app(self, app: App) -> None:
        """Plug in another fake API (asked after the ones already registered)."""
        self.httpd.add_app(app)

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
        """Make the next ``count`` matching requests fail; see :meth:`SandboxHTTPServer.inject_fault`."""
        return self.httpd.inject_fault(
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

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self.httpd.clear_faults()

    def request_log(self) -> list[dict[str, Any]]:
        """A copy of the request log, oldest first; see :meth:`SandboxHTTPServer.request_log`."""
        return self.httpd.request_log()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request log, as :meth:`request_log` returns it (a copy)."""
        return self.httpd.request_log()

    def clear_request_log(self) -> None:
        """Forget every logged request."""
        self.httpd.clear_request_log()

    def reset(self) -> None:
        """Clear faults, the request log, segments, tokens and added systems (Zendesk: built-ins only)."""
        self.httpd.reset()
