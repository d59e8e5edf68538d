"""How long Airflow takes to render a templated ``user_ids`` list of literal ids.

Run: ``.venv-newest/bin/python benchmarks/render_ids.py`` (after ``make demo`` or ``make test``).

Airflow compiles every string of a templated list as a Jinja template; the provider's operators
skip strings that hold no Jinja delimiter (``operators/_base.py``). This prints, for 60,000 and
1,000,000 literal ids plus one templated element, the time of ``render_template_fields`` on
``WalkMeUpdateSegmentOperator`` and, for comparison, on a plain operator with Airflow's default
rendering (60,000 ids only by default: the default path takes minutes at 1,000,000).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Sequence

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="segments-bench-"))

import pendulum
from airflow.sdk import DAG, BaseOperator

from airflow_provider_segments.operators.walkme import WalkMeUpdateSegmentOperator

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
TEMPLATED = "{{ 'x@example.com' }}"


class PlainIdsOperator(BaseOperator):
    """Same templated field, Airflow's default rendering."""

    template_fields: Sequence[str] = ("user_ids",)

    def __init__(self, *, user_ids: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.user_ids = user_ids


def render_seconds(make_operator, n: int) -> float:
    ids = [f"user{i:07d}@example.com" for i in range(n)] + [TEMPLATED]
    with DAG(f"bench_{n}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        op = make_operator(ids)
    started = time.perf_counter()
    op.render_template_fields({})
    elapsed = time.perf_counter() - started
    assert op.user_ids[-1] == "x@example.com" and op.user_ids[0] == "user0000000@example.com"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[60_000, 1_000_000])
    parser.add_argument("--default-sizes", type=int, nargs="*", default=[60_000])
    args = parser.parse_args()

    import airflow

    print(f"Airflow {airflow.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"{'literal ids':>12}  {'provider (s)':>12}  {'Airflow default (s)':>19}  {'speed-up':>8}")
    for n in args.sizes:
        ours = render_seconds(
            lambda ids: WalkMeUpdateSegmentOperator(
                task_id="u", segment_guid=GUID, action="add", user_ids=ids
            ),
            n,
        )
        default = None
        if n in args.default_sizes:
            default = render_seconds(lambda ids: PlainIdsOperator(task_id="p", user_ids=ids), n)
        shown = f"{default:19.2f}" if default is not None else f"{'not run':>19}"
        ratio = f"{default / ours:7.0f}x" if default is not None else f"{'':>8}"
        print(f"{n:>12,}  {ours:12.3f}  {shown}  {ratio}")


if __name__ == "__main__":
    main()
