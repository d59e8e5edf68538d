"""The state file's body written ahead of its header (``WrittenAhead``)."""

from __future__ import annotations

import pytest

from airflow_provider_segments.membership.state_file import StateFile, WrittenAhead


def test_a_body_written_ahead_is_committed_once_and_never_replaced_by_its_header_alone(tmp_path):
    """A second ``commit`` (or one after ``discard``) wrote the new header over an empty body: a
    snapshot claiming ids it does not hold. It is refused, and the file stays as committed."""
    state = StateFile(str(tmp_path / "state.json"))
    ahead = WrittenAhead(state, [b"a\n", b"b\n"])
    ahead.commit('{"count": 2}')
    with state.open_binary() as handle:
        committed = handle.read()
    assert committed.split(b"\n", 1)[1] == b"a\nb\n"
    with pytest.raises(RuntimeError, match="once"):
        ahead.commit('{"count": 3}')
    discarded = WrittenAhead(state, [b"c\n"])
    discarded.discard()
    with pytest.raises(RuntimeError, match="once"):
        discarded.commit('{"count": 1}')
    with state.open_binary() as handle:
        assert handle.read() == committed
