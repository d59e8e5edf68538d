"""The time limits of one attempt, and the deadline that bounds its whole answer.

A read timeout bounds each socket read, not the answer: a server sending one byte per second holds
a worker for as long as it likes. Each attempt therefore arms a watchdog once the request has been
sent; when it fires it shuts the socket down, so the blocked read returns at once (headers or body).

One meaning per name (:class:`Timeouts`): ``connect`` bounds connecting, ``read`` bounds each read
(the connection's extra ``timeout``), ``attempt_deadline`` bounds one attempt's whole answer.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
#: The deadline of one attempt's whole answer is the read timeout plus this share of it (at least
#: DEADLINE_GRACE_MIN seconds), so a server that is merely silent still shows as a read timeout.
DEADLINE_GRACE = 0.1
DEADLINE_GRACE_MIN = 0.1


@dataclass(frozen=True)
class Timeouts:
    """The time limits of one attempt, in seconds.

    :param connect: to establish the connection (extra ``connect_timeout``).
    :param read: for any one read of the answer (extra ``timeout``).
    """

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT

    @property
    def attempt_deadline(self) -> float:
        """Seconds one attempt's whole answer may take, counted from when the request was sent."""
        return self.read + max(DEADLINE_GRACE_MIN, self.read * DEADLINE_GRACE)

    def for_requests(self) -> tuple[float, float]:
        """The ``(connect, read)`` pair ``requests`` takes as ``timeout``."""
        return self.connect, self.read


class AttemptDeadlineExceeded(Exception):
    """One attempt did not receive its whole answer within its deadline."""

    def __init__(self, timeouts: Timeouts) -> None:
        super().__init__(f"no whole answer within {timeouts.attempt_deadline:g} s")
        self.timeouts = timeouts


def send_within_deadline(send: Callable[[], requests.Response], timeouts: Timeouts) -> requests.Response:
    """Call ``send`` (one attempt) and cut it off when its whole answer has not arrived within
    ``timeouts.attempt_deadline``: :class:`AttemptDeadlineExceeded` then, also when the cut ended a
    body early without an error."""
    deadline = _AttemptDeadline(timeouts.attempt_deadline)
    _ATTEMPT.deadline = deadline
    try:
        response = send()
    except Exception as exc:
        if deadline.finish():
            raise AttemptDeadlineExceeded(timeouts) from exc
        raise
    finally:
        _ATTEMPT.deadline = None
    if deadline.finish():  # a body read until the connection closed ends early, not in error
        response.close()
        raise AttemptDeadlineExceeded(timeouts)
    return response


_ATTEMPT = threading.local()


class _AttemptDeadline:
    """The deadline of one attempt: when it passes, the sockets the answer is read from are shut down."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._done = False
        self._armed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        """Called by the connection when it starts reading an answer from ``sock``."""
        with self._lock:
            if self._done:
                return
            if self.fired:
                _shut(sock)
                return
            self._sockets.append(sock)
            if not self._armed:
                self._armed = True
                _WATCHDOG.arm(time.monotonic() + self.seconds, self)

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def finish(self) -> bool:
        """Disarm; True when the deadline fired during the attempt."""
        with self._lock:
            self._done = True
            return self.fired


class _Watchdog:
    """One thread for every attempt's deadline: a thread per request costs milliseconds each on a
    busy two-core worker (its start handshake), a heap entry costs nothing. Entries of finished
    attempts are dropped when they come due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _AttemptDeadline]] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._serial = 0
        if hasattr(os, "register_at_fork"):  # a forked task process has no watchdog thread yet
            os.register_at_fork(after_in_child=self._forget_thread)

    def _forget_thread(self) -> None:
        self._thread = None
        self._due = []
        self._condition = threading.Condition()

    def arm(self, when: float, deadline: _AttemptDeadline) -> None:
        with self._condition:
            self._serial += 1
            heapq.heappush(self._due, (when, self._serial, deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="segments-deadlines", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._due:
                    self._condition.wait()
                when, _, deadline = self._due[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._due)
            deadline.fire()


_WATCHDOG = _Watchdog()


def _shut(sock: Any) -> None:
    # The plain socket's shutdown, also for a TLS socket: ssl.SSLSocket.shutdown would tear down
    # the TLS state under the reading thread; this only ends the stream, so the read returns.
    # (TLS through an https proxy reads through urllib3's SSLTransport, which wraps the socket.)
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
    if isinstance(raw, socket.socket):
        with contextlib.suppress(OSError):
            socket.socket.shutdown(raw, socket.SHUT_RDWR)


@functools.cache
def deadline_adapter_class() -> type:
    """A requests adapter whose connections report to the current attempt's deadline (built on
    first use: requests and urllib3 are not imported at DAG parse time)."""
    import urllib3.connection
    import urllib3.connectionpool
    import urllib3.poolmanager
    from requests.adapters import HTTPAdapter

    class _Watched:
        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            deadline = getattr(_ATTEMPT, "deadline", None)
            sock = getattr(self, "sock", None)
            if deadline is not None and sock is not None:
                deadline.watch(sock)
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]

    class WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
        pass

    class WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
        pass

    class WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    pools = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if type(manager) is urllib3.poolmanager.ProxyManager:  # not SOCKS: it has its own pools
                manager.pool_classes_by_scheme = pools
            return manager

    return DeadlineAdapter
