"""Constants and helpers the tests share (importable: tests/ is on the pytest pythonpath)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

WALKME_TEST_URL = "https://walkme.test"
WALKME_SYSTEM = "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69"
WALKME_CLIENT_ID = "client-id-123"
WALKME_CLIENT_SECRET = "s3cr3t-client-secret-value"


def walkme_conn_json(
    host: str = WALKME_TEST_URL,
    login: str = WALKME_CLIENT_ID,
    password: str = WALKME_CLIENT_SECRET,
    **extra: object,
) -> str:
    """An AIRFLOW_CONN_... value for a walkme connection (fast retries for tests)."""
    extra = {"system_guid": WALKME_SYSTEM, "backoff_initial": 0.01, **extra}
    return json.dumps(
        {"conn_type": "walkme", "host": host, "login": login, "password": password, "extra": extra}
    )


ZENDESK_TEST_URL = "https://acme.zendesk.com"
ZENDESK_EMAIL = "agent@acme.example.com"
ZENDESK_SECRET = "zd-s3cr3t-token-value"


def zendesk_conn_json(
    host: str = "acme",
    login: str | None = ZENDESK_EMAIL,
    password: str = ZENDESK_SECRET,
    **extra: object,
) -> str:
    """An AIRFLOW_CONN_... value for a zendesk_help_center connection (fast retries for tests)."""
    extra = {"backoff_initial": 0.01, **extra}
    conn = {
        "conn_type": "zendesk_help_center",
        "host": host,
        "login": login,
        "password": password,
        "extra": extra,
    }
    return json.dumps(conn)


def sandbox_conn_env(url: str, **extra: object) -> dict[str, str]:
    """AIRFLOW_CONN_* values pointing both default connections at a sandbox, with fast retries (the
    testing kit's own helper, which users' DAG tests call too)."""
    from airflow_provider_segments.testing.pytest_plugin import connection_env

    return connection_env(url, **{"backoff_initial": 0.01, "backoff_max": 0.05, **extra})


def impatient_sandbox(monkeypatch: Any, create_lookup_interval: float) -> Iterator[Any]:
    """A sandbox whose connections give up fast (1 s per attempt, 2 attempts) and a create lookup
    that waits ``create_lookup_interval`` between looks: for tests of lost answers and retries."""
    from airflow_provider_segments.membership import writes
    from airflow_provider_segments.testing import SegmentsTestServer

    with SegmentsTestServer() as server:
        for name, value in sandbox_conn_env(server.url, timeout=1, max_attempts=2).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(writes, "CREATE_LOOKUP_INTERVAL", create_lookup_interval)
        yield server


#: Airflow's own supervisor prints the secrets a task registers with the masker at DEBUG
#: ("Sending request ... msg=MaskSecret(value='...')") in dag.test runs; that line is Airflow's,
#: not the provider's, so leak scans skip it (see docs/reliability.md).
AIRFLOW_MASK_SECRET_DEBUG_LINE = "msg=MaskSecret("


def leaked_secrets(output: str, secrets: list[str]) -> list[str]:
    """The secrets that appear in ``output`` outside Airflow's own MaskSecret debug lines."""
    lines = [line for line in output.splitlines() if AIRFLOW_MASK_SECRET_DEBUG_LINE not in line]
    text = "\n".join(lines)
    return [secret for secret in secrets if secret and secret in text]


def leaked_secrets_in_files(root, secrets: list[str], skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Secrets found in any file under ``root`` (metadata DB with XComs and rendered fields, task logs)."""
    from pathlib import Path

    found: dict[str, list[str]] = {}
    for path in Path(root).rglob("*"):
        if not path.is_file() or path.name in skip:
            continue
        data = path.read_bytes()
        hits = [s for s in secrets if s and s.encode() in data]
        if path.suffix == ".log" and hits:  # task logs: the same Airflow DEBUG line applies
            hits = leaked_secrets(data.decode(errors="replace"), hits)
        if hits:
            found[str(path)] = hits
    return found


class WalkMeSegmentMock:
    """One WalkMe segment as requests-mock routes (list, create, update, delete) whose listed
    ``usersCount`` follows the writes, so the read-back after a change sees what was sent.

    ``members`` is its membership, ``name`` its listed name; ``updated`` is the PUT callback (for a
    response list that fails first, then answers as the segment would).
    """

    def __init__(self, requests_mock: Any, segments_url: str, guid: str, name: str) -> None:
        self.mock, self.guid, self.name = requests_mock, guid, name
        self.members: dict[str, None] = {}
        self.deleted = False
        requests_mock.get(segments_url, json=self.listed)
        requests_mock.post(segments_url, json=self.created)
        requests_mock.put(f"{segments_url}/{guid}", json=self.updated)
        requests_mock.delete(f"{segments_url}/{guid}", text=self.deleting)

    def __getattr__(self, name: str) -> Any:  # request_history, get, put... of the mocker
        return getattr(self.mock, name)

    def listed(self, request: Any, context: Any) -> list[dict[str, Any]]:
        return (
            [] if self.deleted else [{"guid": self.guid, "name": self.name, "usersCount": len(self.members)}]
        )

    def deleting(self, request: Any, context: Any) -> str:
        self.deleted, context.status_code = True, 204
        return ""

    def created(self, request: Any, context: Any) -> dict[str, Any]:
        self.deleted = False
        self.members = dict.fromkeys(request.json()["userIds"])
        self.name = request.json()["name"]  # one segment: a create (re)makes it under the name sent
        context.status_code = 201
        return {"guid": self.guid, "name": self.name, "usersCount": len(self.members)}

    def updated(self, request: Any, context: Any) -> dict[str, Any]:
        body = request.json()
        if body["action"] == "override":
            self.members = {}
        for user_id in body["userIds"]:
            if body["action"] == "remove":
                self.members.pop(user_id, None)
            else:
                self.members[user_id] = None
        return {"guid": self.guid, "name": self.name}


class ZendeskSegmentStore:
    """``GET``/``PUT`` of ``/user_segments/<id>.json`` (and a create) on an in-memory store, so the
    read-back after a change sees what was sent."""

    def __init__(self, requests_mock: Any, base: str, *segments: dict[str, Any]) -> None:
        self.url = re.compile(rf"{re.escape(base)}/user_segments/(\d+)\.json")
        self.segments = {s["id"]: dict(s) for s in segments}
        requests_mock.get(self.url, json=self.get)
        requests_mock.put(self.url, json=self.put)
        requests_mock.delete(self.url, text=self.delete)

    def _id(self, request: Any) -> int:
        return int(self.url.search(request.url).group(1))

    def _new(self, id_: int) -> dict[str, Any]:
        return {"id": id_, "name": "VIP", "user_type": "staff", "built_in": False}

    def get(self, request: Any, context: Any) -> dict[str, Any]:
        found = self.segments.get(self._id(request))
        if found is None:
            context.status_code, context.reason = 404, "Not Found"
            return {"error": "RecordNotFound"}
        return {"user_segment": found}

    def delete(self, request: Any, context: Any) -> str:
        context.status_code = 204 if self.segments.pop(self._id(request), None) else 404
        return ""

    def put(self, request: Any, context: Any) -> dict[str, Any]:
        found = self.segments.setdefault(self._id(request), self._new(self._id(request)))
        found.update(request.json()["user_segment"])
        return {"user_segment": found}

    def create(self, id_: int) -> Any:
        """A POST callback that creates segment ``id_`` from the body."""

        def created(request: Any, context: Any) -> dict[str, Any]:
            context.status_code = 201
            self.segments[id_] = {**self._new(id_), **request.json()["user_segment"]}
            return {"user_segment": self.segments[id_]}

        return created


def meanwhile(monkeypatch: Any, app_class: type, handler: str, change: Callable[[], Any]) -> None:
    """Run ``change`` once, in the sandbox, as it starts handling the first request that reaches
    ``app_class.handler`` (``"_create"``, ``"_update"``): another client's change while this task's
    write is on its way. Unlike a timer racing a held request, the order never depends on how fast a
    loaded machine runs the task up to its write."""
    real = getattr(app_class, handler)
    pending = [change]

    def handled(self: Any, *args: Any, **kwargs: Any) -> Any:
        if pending:
            pending.pop()()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(app_class, handler, handled)


def sync_audience(state: Any, user_ids: list[str], **kwargs: Any) -> dict[str, Any]:
    """Run the sync operator on the segment named "Audience" with ``state`` as its ``state_path``."""
    from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator

    return WalkMeSyncSegmentOperator(
        task_id="sync", name="Audience", state_path=str(state), user_ids=user_ids, **kwargs
    ).execute({})


def only_segment_members(sandbox: Any) -> set[str]:
    """The members of the one WalkMe segment the sandbox's test system holds."""
    from airflow_provider_segments.testing import TEST_SYSTEM_GUID

    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def outcome(call: Callable[[], Any]) -> Any:
    """What ``call`` returned, or its exception as "Type: message" (for assertion messages)."""
    try:
        return call()
    except BaseException as err:
        return f"{type(err).__name__}: {err}"
