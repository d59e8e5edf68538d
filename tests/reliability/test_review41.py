"""Hostile review 41: the change of issue 19's fast id checks (``list.count`` for the exact-``str``
test) and the per-segment answered time taken by the read-back.

Each test fails on the code as reviewed; each asserts what the sandbox received or holds, or what a
task returned or raised."""

from __future__ import annotations

import pytest
from support import outcome as _outcome

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID


# == 1. the exact-str test of a block of values asks the ids' classes, not the type ==================
class _SaysItIsStr(type):
    """A metaclass whose classes compare equal to ``str`` (a "tagged string" library's trick). Its
    classes stay hashable by identity, as ``type``'s are: before the change a set of them was not
    ``{str}``, and every id of such a class went through the per-id walk."""

    def __eq__(cls, other: object) -> bool:
        return other is str or type.__eq__(cls, other)

    __hash__ = type.__hash__


class _ShortSpoken(str, metaclass=_SaysItIsStr):
    """A str subclass that reports a short length (its characters are what is sent)."""

    def __len__(self) -> int:
        return 5


class _Tagged(str, metaclass=_SaysItIsStr):
    """A str subclass that changes nothing of a str's behaviour (a "tagged" id type)."""


class _SaysItIsStrAndHashesAsStr(_SaysItIsStr):
    """The same, with ``str``'s hash too: a set of types then holds ``str`` only (the check before
    the change, ``set(map(type, batch)) == {str}``, took such a block too; the owner's addition)."""

    def __hash__(cls) -> int:
        return hash(str)


class _LongHashedAsStr(str, metaclass=_SaysItIsStrAndHashesAsStr):
    def __len__(self) -> int:
        return 5


class _NotAString(metaclass=_SaysItIsStr):
    """Not a string at all; its class only compares equal to ``str``."""

    def __len__(self) -> int:
        return 3


SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"


def _writes(sandbox) -> list[dict]:
    """The segment writes the sandbox received (creates, updates, deletes; not token calls)."""
    return [
        entry
        for entry in sandbox.request_log()
        if entry["method"] in ("POST", "PUT", "DELETE") and entry["path"].startswith(SEGMENTS)
    ]


def test_an_id_too_long_is_refused_before_anything_is_sent_whatever_its_class_says(sandbox):
    """``user_ids[1]`` is a str subclass of 101 characters (the limit is 100) whose class compares
    equal to ``str`` and whose ``len()`` says 5. The per-id walk reads its own characters
    (``str.__str__``) and refuses it, a validation error naming ``user_ids[1]``, before any request
    (as before the change, when the block's ``set`` of types was not ``{str}``). ``list.count(str)``
    asks the class's ``__eq__``: the block takes the fast path, the set of lengths reads the lying
    ``len`` and the id is accepted; the task then dies in the sender with a bare ``TypeError`` from
    the JSON encoder (a validation error is what the operators fail without retries on, and it
    names the id; the TypeError does neither)."""
    too_long = _ShortSpoken("x" * 101)
    result = _outcome(
        lambda: WalkMeHook().create_segment("Audience", ["ok", too_long], system_guid=TEST_SYSTEM_GUID)
    )
    sent = _writes(sandbox)
    assert not sent, f"a write went out with an id of 101 characters: {sent} -> {result!r}"
    assert isinstance(result, str) and result.startswith("SegmentsValidationError"), result
    assert "user_ids[1]" in result, result


@pytest.mark.parametrize("parallel", [1, 4])
def test_ids_accepted_are_sent_as_plain_strings_and_the_override_completes(sandbox, monkeypatch, parallel):
    """A segment holds a0..a5. An ``override`` (chunks of 2: override, read-back, adds) is given the
    same six ids, the last one an instance of a str subclass that changes nothing (its class merely
    compares equal to ``str``). The per-id walk sends every id as a plain str (``str.__str__``): the
    override completes, the segment still holds a0..a5 (so it did before the change, when the
    block's ``set`` of types was not ``{str}``). Now the fast path keeps the subclass instance as the
    id; the JSON encoder (msgspec) refuses it when its chunk is sent, after the override chunk and
    the first add landed: the task dies with a bare ``TypeError`` (no PartialUpdateError, no
    position named) and the segment is left holding 4 (one write at a time) or 2 (four) of its 6 members."""
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    wanted = [f"a{i}" for i in range(6)]
    segment = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", wanted)
    ids = [*wanted[:5], _Tagged(wanted[5])]
    result = _outcome(
        lambda: WalkMeHook(max_parallel_requests=parallel).update_segment(
            segment["guid"], "override", ids, system_guid=TEST_SYSTEM_GUID
        )
    )
    members = set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))
    assert isinstance(result, dict), f"{result!r}; the segment holds {sorted(members)}"
    assert members == set(wanted), members
    assert result["verified"] is True, result


def test_a_value_that_is_not_a_string_is_refused_naming_its_position(sandbox):
    """``user_ids[1]`` is an object that is not a string (its class merely compares equal to
    ``str``). The per-id walk refuses it as a validation error naming ``user_ids[1]`` ("expected a
    string"), which the operators turn into a failure without retries; before the change the walk
    ran. Now the fast path takes the block and ``"".join`` raises a bare ``TypeError`` ("sequence item
    1: expected str instance") that names no field, and is retried as if it were transient."""
    result = _outcome(
        lambda: WalkMeHook().create_segment("Audience", ["ok", _NotAString()], system_guid=TEST_SYSTEM_GUID)
    )
    assert not _writes(sandbox), result
    assert isinstance(result, str) and result.startswith("SegmentsValidationError"), result
    assert "user_ids[1]" in result, result


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(["ok", _ShortSpoken("y" * 101)], id="too-long"),
        pytest.param(["ok", _NotAString()], id="not-a-string"),
        pytest.param(["ok", _LongHashedAsStr("z" * 101)], id="too-long-hashed-as-str"),
    ],
)
def test_the_fast_path_refuses_what_the_walk_refuses(values):
    """The invariant at its smallest: ``UserIds.from_values`` refuses, as a validation error naming
    the position, every block the per-id walk refuses; here a block the fast path now takes."""
    from airflow_provider_segments.ids import UserIds

    with pytest.raises(SegmentsValidationError, match=r"user_ids\[1\]"):
        UserIds.from_values(values, max_length=100)


def test_the_ids_the_fast_path_accepts_are_plain_str():
    """What ``UserIds.from_values`` accepts is held as plain ``str`` (what the per-id walk makes of a
    subclass, ``str.__str__``): the sender's JSON encoder refuses anything else."""
    from airflow_provider_segments.ids import UserIds

    ids = UserIds.from_values(["a", _Tagged("b")], max_length=100)
    assert [type(user_id) is str for user_id in ids] == [True, True]  # (``is``: the class says == str)
    assert list(ids) == ["a", "b"]
