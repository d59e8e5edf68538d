"""Sphinx configuration of the airflow-provider-segments documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` from the repository root, in an
environment where the package (and so Airflow) is installed: autodoc imports the operators.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from importlib.metadata import version as distribution_version

# autodoc imports the package, which imports Airflow: give Airflow a throw-away home (no config,
# logs or database of a real installation are read or written) and no example DAGs. This runs
# before any extension imports a documented module.
if "AIRFLOW_HOME" not in os.environ:
    _airflow_home = tempfile.mkdtemp(prefix="segments-docs-airflow-home-")
    os.environ["AIRFLOW_HOME"] = _airflow_home
    atexit.register(shutil.rmtree, _airflow_home, ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

# -- Project -------------------------------------------------------------------------------------
project = "airflow-provider-segments"
author = "airflow-provider-segments maintainers"
copyright = "airflow-provider-segments maintainers"
release = distribution_version("airflow-provider-segments")
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------------------------
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
nitpicky = False
# Signatures: "WalkMeHook(...)" rather than the full dotted path, one parameter a line when long.
add_module_names = False
python_maximum_signature_line_length = 88

# -- MyST ----------------------------------------------------------------------------------------
# Anchors for "page.md#heading" links (h1 to h3), so the same links work on GitHub and in the site.
myst_heading_anchors = 3

# -- autodoc -------------------------------------------------------------------------------------
# Only our own docstrings: Airflow's BaseOperator docstrings hold reST that does not build cleanly,
# so nothing is inherited and no page uses :inherited-members:.
autodoc_inherit_docstrings = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"

# -- graphviz (needs the `dot` program: Debian/Ubuntu package `graphviz`) ------------------------
graphviz_output_format = "svg"

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"{project} {release}"
html_theme_options = {
    "description": "WalkMe segments and Zendesk Help Center user segments from Airflow DAGs",
    "fixed_sidebar": True,
    "show_relbars": True,
}
