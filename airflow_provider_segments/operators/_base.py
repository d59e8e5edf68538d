"""What every operator of this provider shares: fail-fast input errors and cheap id rendering."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow_provider_segments._compat import AirflowFailException, Context
from airflow_provider_segments.exceptions import (
    SegmentExistsError,
    SegmentsConfigError,
    SegmentsValidationError,
)

#: Jinja only does something with a string holding one of these (default delimiters).
_JINJA_MARKERS = ("{{", "{%", "{#")


@contextmanager
def fail_fast_on_bad_input() -> Iterator[None]:
    """Turn input and configuration errors into a failure that Airflow does not retry.

    Retrying cannot fix a malformed id or connection, and each retry would only wait out the
    retry delay to fail the same way; API and network errors keep the task's retry policy.
    """
    try:
        yield
    except (SegmentsValidationError, SegmentsConfigError, SegmentExistsError) as err:
        raise AirflowFailException(str(err)) from err


def may_hold_jinja(value: str) -> bool:
    """True when rendering ``value`` could change it (it holds a Jinja delimiter)."""
    return "{" in value and any(marker in value for marker in _JINJA_MARKERS)


class LiteralIdsRenderingMixin:
    """Render templated collections without compiling the strings that hold no Jinja syntax.

    Airflow compiles every string of a templated list as a Jinja template, about 150 µs each
    (measured with Airflow 3.3.2 on the project's 2-core machine): 60,000 literal ids cost ~10 s and
    1,000,000 ids ~3 min before the first request. Strings without a Jinja delimiter render to
    themselves (bar native rendering turning "12345" into 12345, which for ids is a bug), so they are
    kept as they are; other elements, and top-level strings such as an XCom-pull expression, render
    exactly as Airflow would.
    """

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: Any = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        if type(content) in (list, tuple, set):
            if jinja_env is None:
                jinja_env = self.get_template_env()  # type: ignore[attr-defined]
            render = super().render_template  # type: ignore[misc]
            rendered = (
                item
                if isinstance(item, str) and not may_hold_jinja(item)
                else render(item, context, jinja_env, seen_oids)
                for item in content
            )
            return type(content)(rendered)
        return super().render_template(content, context, jinja_env, seen_oids)  # type: ignore[misc]
