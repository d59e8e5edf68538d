"""What every platform hook shares: connection -> settings -> client, ``get_conn()``,
``test_connection()``, secret registration and the ``if_exists`` choices.

A platform hook adds only its API knowledge: how its connection's fields read
(:meth:`SegmentsHook.read_connection`), which sentence helps with a 401/403
(:meth:`SegmentsHook.error_hints`), what a cheap authenticated call is
(:meth:`SegmentsHook.check_connection`), and its calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from airflow_provider_segments._compat import BaseHook, mask_secret
from airflow_provider_segments.exceptions import (
    SegmentsApiError,
    SegmentsConfigError,
    SegmentsError,
    SegmentsValidationError,
)
from airflow_provider_segments.hooks._connection import (
    ConnectionSettings,
    check_credential,
    check_fields_read,
    normalized_extra,
)
from airflow_provider_segments.http import ApiClient, Redactor
from airflow_provider_segments.secret_forms import MIN_SECRET_CHARS
from airflow_provider_segments.text import preview

#: What a create does when the name is taken: update that segment, or fail.
IF_EXISTS_CHOICES = ("update", "error")


def check_if_exists(value: Any) -> str:
    """Return ``value`` if it is one of :data:`IF_EXISTS_CHOICES`; refuse anything else by name."""
    if value not in IF_EXISTS_CHOICES:
        raise SegmentsValidationError(
            f"if_exists {preview(value)} is not valid: use one of {', '.join(IF_EXISTS_CHOICES)}."
        )
    return value


#: The typed settings a platform reads from its connection.
SettingsT = TypeVar("SettingsT", bound=ConnectionSettings)


class SegmentsHook(BaseHook, Generic[SettingsT]):
    """Base of the platform hooks: reads the connection once, builds the one HTTP client.

    Nothing is read or sent at construction: the connection is read on first use.
    """

    #: Platform name in messages ("WalkMe").
    platform: ClassVar[str] = ""
    conn_name_attr: ClassVar[str] = ""

    @property
    def conn_id(self) -> str:
        """The Airflow connection id this hook uses."""
        return getattr(self, self.conn_name_attr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conn_name_attr}={self.conn_id!r})"

    # -- what a platform hook provides -----------------------------------------------------------
    def read_connection(self, conn: Any, extra: dict[str, Any]) -> SettingsT:
        """Validate a connection's fields and say what they mean for this platform."""
        raise NotImplementedError

    def error_hints(self) -> dict[int, str]:
        """A sentence per HTTP status that tells a DAG author what to fix (401, 403)."""
        return {}

    def check_connection(self) -> str:
        """Make one cheap authenticated call; return what it showed."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------
    @cached_property
    def settings(self) -> SettingsT:
        """The connection, read and validated on first use; its secret goes to the masker at once."""
        conn = self.get_connection(self.conn_id)
        check_fields_read(conn, self.conn_id)
        extra = normalized_extra(conn.extra_dejson, self.conn_type)  # type: ignore[attr-defined]
        if not conn.password:
            raise SegmentsConfigError(
                f"Connection {self.conn_id!r} has no {self.secret_label()}: set its password field."
            )
        mask_secret(conn.password)
        with _secret_kept_out(conn.password):  # a secret pasted into the host field too
            check_credential(conn.password, "password", self.conn_id)
            if conn.password and len(conn.password) < MIN_SECRET_CHARS:
                raise SegmentsConfigError(  # (its length only: the value is never shown)
                    f"Connection {self.conn_id!r}: its password field holds {len(conn.password)} "
                    f"character(s). A secret this short cannot be kept out of error texts (hiding every "
                    "such word in an answer would spell it out), and no WalkMe client secret or Zendesk "
                    "token or password is this short: check the field. Nothing was sent."
                )
            settings = self.read_connection(conn, extra)
            check_credential(settings.login, "login", self.conn_id)  # (the login sent, if any)
            return settings

    def secret_label(self) -> str:
        """What the password field holds, for messages."""
        return "secret"

    @cached_property
    def client(self) -> ApiClient:
        """The HTTP client (built on first use): retry budget, timeouts and TLS from the extras."""
        settings = self.settings
        with _secret_kept_out(settings.secret):
            client = ApiClient.from_extra(
                platform=self.platform,
                base_url=settings.base_url,
                extra=settings.extra,
                conn_id=self.conn_id,
                hints=self.error_hints(),
                logger=self.log,
            )
        client.add_secret(settings.secret)
        return client

    def get_conn(self) -> ApiClient:
        """The HTTP client every call goes through, as the official providers' hooks return theirs."""
        return self.client

    @property
    def base_url(self) -> str:
        """The API base URL this hook talks to."""
        return self.settings.base_url

    def register_secret(self, value: str) -> None:
        """A secret obtained at run time (an access token): masked in logs, redacted in messages."""
        mask_secret(value)
        self.client.add_secret(value)

    def test_connection(self) -> tuple[bool, str]:
        """What Airflow's "Test" button shows: one cheap authenticated call, one attempt (no retries:
        the button answers at once), naming the host on failure; never echoes a secret."""
        try:
            with self.client.single_attempt():
                return True, self.client.redact(self.check_connection())
        except SegmentsApiError as err:
            text = f"Connection test against {self.base_url} (one attempt, no retries): {err}"
            return False, self.client.redact(text)
        except SegmentsError as err:
            return False, str(err)


@contextlib.contextmanager
def _secret_kept_out(secret: str) -> Iterator[None]:
    """Re-raise a :class:`SegmentsConfigError` with ``secret`` (in every form) redacted: a connection
    field that holds it (a password pasted into the host) is quoted by name, never shown."""
    try:
        yield
    except SegmentsConfigError as err:
        redactor = Redactor()
        redactor.add_secret(secret)
        if redactor(str(err)) == str(err):
            raise
        raise SegmentsConfigError(redactor(str(err))) from None
