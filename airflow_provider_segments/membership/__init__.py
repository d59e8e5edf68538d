"""What a segment ends up holding, and how that is made sure of: the one place for membership rules.

* :mod:`.guards` — mass-change guards checked before anything is sent.
* :mod:`.plan` — what a change sends: *full* or *delta*.
* :mod:`.state` — snapshot, journal and lease, through one storage adapter (local or object storage).
* :mod:`.state_file` — that adapter: atomic writes, and a lease that appears whole or not at all.
* :mod:`.sender` — the chunk sender (and why an ``override`` is never retried blindly).
* :mod:`.writes` — create-or-adopt and delete-despite-a-lost-answer, used by both platforms' hooks.
* :mod:`.engine` — create, update and the read-back that verifies each change.
* :mod:`.sync` — a sync in stages: input, evidence, plan, guards, journal, send, verify, record.

The rule: a segment's membership is exactly what the task was asked for, verified against the
platform, or the task fails and says so. The snapshot is a cache: it is used for a delta only while
the platform's listed count and update time agree with it.
"""

from __future__ import annotations

from airflow_provider_segments.membership.engine import (
    create_segment,
    new_creation_token,
    update_segment,
)
from airflow_provider_segments.membership.guards import DEFAULT_MAX_REMOVAL_FRACTION, Guards
from airflow_provider_segments.membership.plan import Plan, delta_plan, full_plan
from airflow_provider_segments.membership.read_back import verify
from airflow_provider_segments.membership.state import Journal, Snapshot, StateStore
from airflow_provider_segments.membership.sync import sync_segment
from airflow_provider_segments.membership.writes import CreationMark, delete_confirmed

__all__ = [
    "DEFAULT_MAX_REMOVAL_FRACTION",
    "CreationMark",
    "Guards",
    "Journal",
    "Plan",
    "Snapshot",
    "StateStore",
    "create_segment",
    "delete_confirmed",
    "delta_plan",
    "full_plan",
    "new_creation_token",
    "sync_segment",
    "update_segment",
    "verify",
]
