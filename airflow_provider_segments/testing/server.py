"""The test server: both fake APIs on one local port, as a context manager (see
:mod:`~airflow_provider_segments.testing.http_server` for the machinery and its control endpoints)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from types import TracebackType
from typing import Any

from airflow_provider_segments.testing.base import (
    App,
)
from airflow_provider_segments.testing.faults import Fault
from airflow_provider_segments.testing.http_server import LocalHTTPServer
from airflow_provider_segments.testing.walkme import WalkMeApp
from airflow_provider_segments.testing.zendesk import ZendeskApp

__all__ = ["SegmentsTestServer", "is_loopback_host"]


class SegmentsTestServer:
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
                f"refusing to bind the test server to {host!r}: it is not a loopback address and "
                "its credentials are public; use 127.0.0.1, or pass allow_remote=True (--allow-remote)"
            )
        self.walkme = WalkMeApp(token_ttl=token_ttl)
        """The fake WalkMe Segments API; its state is readable in-process by tests."""
        self.zendesk = ZendeskApp()
        """The fake Zendesk Help Center User Segments API; its state is readable in-process by tests."""
        self.httpd = LocalHTTPServer((host, port), [self.walkme, self.zendesk], log_requests=log_requests)
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

    def start(self) -> SegmentsTestServer:
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

    def __enter__(self) -> SegmentsTestServer:
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
        """Make the next ``count`` matching requests fail; see :meth:`LocalHTTPServer.inject_fault`."""
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
        """A copy of the request log, oldest first; see :meth:`LocalHTTPServer.request_log`."""
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


def is_loopback_host(host: str) -> bool:
    """Tell whether every address ``host`` resolves to is a loopback address."""
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False
    addresses = {str(info[4][0]).split("%", 1)[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(address).is_loopback for address in addresses)
