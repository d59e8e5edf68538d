"""Shared by the deployment tests: the wheel and the sdist, built once per session from this checkout."""

from __future__ import annotations

import pytest
from deployment.production import Dists, build_dists


@pytest.fixture(scope="session")
def built_dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The sdist, and the wheel built from it, as a release would make them (~10 s)."""
    return build_dists(tmp_path_factory.mktemp("dist"))
