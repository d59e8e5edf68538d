"""A transient failure reading object storage keeps the task's retry policy (review 10).

A network blip (timeout, connection reset, EIO) reading the ids or the state object was turned into
a validation error, which fails the task without retries; only what a retry cannot fix (a
directory, no permission, a name too long) fails at once.
"""

from __future__ import annotations

import errno
import ssl

import pytest
from fsspec.implementations.memory import MemoryFileSystem
from support import WALKME_SYSTEM, WALKME_TEST_URL, WalkMeSegmentMock

from airflow_provider_segments._compat import AirflowFailException, ObjectStoragePath
from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.operators.walkme import WalkMeCreateSegmentOperator, WalkMeSyncSegmentOperator

SEGMENTS_URL = f"{WALKME_TEST_URL}/public/v1/user/system/{WALKME_SYSTEM}/segment"
GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
TRANSIENT = [
    TimeoutError(errno.ETIMEDOUT, "Connection timed out"),
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    OSError(errno.EIO, "Input/output error"),
    # OpenSSL's SSL_ERROR_SSL is errno 1, the number of EPERM (review 11)
    ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed or bad record mac"),
]
PERMANENT = [
    PermissionError(errno.EACCES, "Permission denied"),
    OSError(errno.ENAMETOOLONG, "File name too long"),
    # s3fs raises AccessDenied as PermissionError("Access Denied"), with no errno (review 11)
    PermissionError("Access Denied"),
    NotADirectoryError("s3://bucket/audience is a key, not a prefix"),
]


@pytest.fixture
def api(requests_mock, walkme_conn):
    requests_mock.post(f"{WALKME_TEST_URL}/accounts/connect/token", json={"access_token": "tok-0123456789"})
    return WalkMeSegmentMock(requests_mock, SEGMENTS_URL, GUID, "Existing")


@pytest.fixture
def flaky_store(monkeypatch):
    """memory:// object storage whose reads of the named files fail as given."""
    failing: dict[str, OSError] = {}
    real_open = MemoryFileSystem._open

    def _open(self, path, mode="rb", *args, **kwargs):
        for name, err in failing.items():
            if str(path).endswith(name) and "r" in mode:
                raise err
        return real_open(self, path, mode, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "_open", _open)
    from airflow.sdk.io import fs as airflow_fs

    monkeypatch.setitem(airflow_fs._register_filesystems(), "memory", lambda conn_id: MemoryFileSystem())
    MemoryFileSystem.store.clear()
    yield failing
    MemoryFileSystem.store.clear()


def ids_object(flaky_store, err: OSError) -> str:
    uri = "memory://bucket/audience/ids.txt"
    ObjectStoragePath(uri).write_text("a\nb\nc\n")
    flaky_store["ids.txt"] = err
    return uri


@pytest.mark.parametrize("err", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_blip_reading_the_ids_object_keeps_the_retry_policy(api, flaky_store, err):
    operator = WalkMeCreateSegmentOperator(
        task_id="c", name="New", user_ids_path=ids_object(flaky_store, err)
    )
    with pytest.raises(SegmentsError, match="retr") as raised:
        operator.execute({})
    assert not isinstance(raised.value, AirflowFailException)
    assert api.request_history == []


@pytest.mark.parametrize("err", PERMANENT, ids=lambda e: f"{type(e).__name__}{e.errno}")
def test_what_a_retry_cannot_fix_still_fails_at_once(api, flaky_store, err):
    operator = WalkMeCreateSegmentOperator(
        task_id="c", name="New", user_ids_path=ids_object(flaky_store, err)
    )
    with pytest.raises(AirflowFailException, match="cannot be opened"):
        operator.execute({})
    assert api.request_history == []


@pytest.mark.parametrize("err", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_blip_reading_the_state_object_keeps_the_retry_policy(api, flaky_store, err):
    state = "memory://bucket/state/existing.snapshot"
    sync = {"task_id": "s", "segment_guid": GUID, "state_path": state, "max_removal_fraction": None}
    WalkMeSyncSegmentOperator(user_ids=["a", "b"], **sync).execute({})
    flaky_store["existing.snapshot"] = err
    writes_before = len(api.request_history)
    with pytest.raises(SegmentsError, match="retr") as raised:
        WalkMeSyncSegmentOperator(user_ids=["a", "b", "c"], **sync).execute({})
    assert not isinstance(raised.value, AirflowFailException)
    assert [r.method for r in api.request_history[writes_before:] if r.method != "GET"] == []


@pytest.mark.parametrize("err", PERMANENT[2:], ids=lambda e: type(e).__name__)
def test_a_state_object_no_retry_can_read_fails_at_once(api, flaky_store, err):
    state = "memory://bucket/state/existing.snapshot"
    sync = {"task_id": "s", "segment_guid": GUID, "state_path": state, "max_removal_fraction": None}
    WalkMeSyncSegmentOperator(user_ids=["a", "b"], **sync).execute({})
    flaky_store["existing.snapshot"] = err
    with pytest.raises(AirflowFailException, match="cannot be read"):
        WalkMeSyncSegmentOperator(user_ids=["a", "b", "c"], **sync).execute({})


def test_a_missing_object_behind_a_signed_url_is_named_without_its_signature(api, flaky_store):
    """A pre-signed URI's query holds its signature: an error quotes the object, never the query."""
    operator = WalkMeCreateSegmentOperator(
        task_id="c", name="New", user_ids_path="memory://bucket/none.txt?X-Amz-Signature=s3cr3tsig0123"
    )
    with pytest.raises(SegmentsError, match=r"memory://bucket/none\.txt") as raised:
        operator.execute({})
    assert "s3cr3tsig" not in str(raised.value)
