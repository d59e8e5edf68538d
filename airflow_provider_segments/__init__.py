"""Apache Airflow provider that manages user segments on WalkMe and Zendesk Help Center.

Airflow discovers the provider through the ``apache_airflow_provider`` entry point, which points at
:func:`airflow_provider_segments.get_provider_info.get_provider_info` (its own module, as the official
providers keep it). Keep this module free of heavy imports: Airflow imports it at every start.
"""

from __future__ import annotations

__version__ = "0.1.0"

WALKME_CONN_TYPE = "walkme"
#: Not "zendesk": the official apache-airflow-providers-zendesk owns that type; both install side by side.
ZENDESK_CONN_TYPE = "zendesk_help_center"
