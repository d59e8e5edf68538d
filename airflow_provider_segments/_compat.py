"""Every Airflow import the provider needs, in one place.

The provider supports Airflow 3.2 and newer, where the task SDK (``airflow.sdk``) is the public
authoring surface. Should a name move again, this is the only module to change.
"""

from __future__ import annotations

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator, Context, ObjectStoragePath, timezone
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.log import mask_secret

__all__ = [
    "AirflowFailException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "Context",
    "DateTimeTrigger",
    "ObjectStoragePath",
    "mask_secret",
    "timezone",
]
