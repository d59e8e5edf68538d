"""Every Airflow import the provider needs, in one place.

The provider supports Airflow 3.2 and newer, where the task SDK (``airflow.sdk``) is the public
authoring surface. Should a name move again, this is the only module to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import (
    Asset,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    Context,
    ObjectStoragePath,
    PokeReturnValue,
    timezone,
)
from airflow.sdk.configuration import conf
from airflow.sdk.definitions.context import render_template_to_string
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
from airflow.sdk.log import mask_secret

if TYPE_CHECKING:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger  # noqa: F401 - see below
    from airflow.sdk.lineage import get_hook_lineage_collector  # noqa: F401 - see below


def __getattr__(name: str) -> Any:
    # The trigger module costs ~9 ms to import and only the sensor needs it: DAG files that import
    # just the operators (at every parse) do not pay for it.
    if name == "DateTimeTrigger":
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        return DateTimeTrigger
    # Hook lineage is only needed when a task has changed a segment, never at DAG parse time.
    if name == "get_hook_lineage_collector":
        from airflow.sdk.lineage import get_hook_lineage_collector

        return get_hook_lineage_collector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def string_template_env(task: Any) -> Any:
    """The Jinja environment ``task`` renders with, minus native rendering (so every result is text)."""
    if task.has_dag():
        return task.dag.get_template_env(force_sandboxed=True)
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(cache_size=0)


__all__ = [
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "Context",
    "ObjectStoragePath",
    "PokeReturnValue",
    "conf",
    "mask_secret",
    "render_template_to_string",
    "string_template_env",
    "timezone",
]
