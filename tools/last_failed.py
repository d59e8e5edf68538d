"""Print, as the last line before ``make test`` stops, the tests the failed pytest run named.

A CI log is often read from its end only: pytest's own list of failures sits above its summary, and
the summary above make's errors. This reads pytest's cache (``.pytest_cache/v/cache/lastfailed``,
written at the end of every run) and prints the failed test ids on one line.
"""

from __future__ import annotations

import json
from pathlib import Path

LAST_FAILED = Path(".pytest_cache/v/cache/lastfailed")


def main() -> None:
    try:
        failed = sorted(json.loads(LAST_FAILED.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        print("Failed tests: unknown (no pytest cache to read them from).")
        return
    print(f"Failed tests ({len(failed)}): {' '.join(failed) or '(none recorded)'}")


if __name__ == "__main__":
    main()
