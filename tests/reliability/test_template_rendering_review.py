"""Rendering a provider field the way a hostile review found wrong (review 14): data from XCom is
never rendered as a template, a field given as an XComArg that resolves to nothing is refused like
a template that renders to nothing, the DAG's own Jinja delimiters are honoured, a Jinja item of a
list that renders to nothing is refused by position, and an id item keeps the text its template
wrote under native rendering."""

from __future__ import annotations

from types import SimpleNamespace

import pendulum
import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.sdk.execution_time.context import ConnectionAccessor

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskListUserSegmentsOperator,
)
from airflow_provider_segments.testing import TEST_CLIENT_SECRET, TEST_SYSTEM_GUID

START = pendulum.datetime(2026, 1, 1)


class MappedTI:
    """Map index 0 of a task mapped over an upstream's XCom (a list of id lists)."""

    map_index, task = 0, None

    def __init__(self, pushed):
        self.pushed = pushed

    def xcom_pull(self, task_ids=None, key="return_value", default=None, map_indexes=None, **_):
        return self.pushed


class PushedNothingTI:
    dag_id, task_id, run_id, map_index = "d", "t", "r", -1

    def xcom_pull(self, task_ids=None, key="return_value", default=None, map_indexes=None, **_):
        return default


def members(sandbox, guid):
    return sandbox.walkme.members(TEST_SYSTEM_GUID, guid)


# -- data from XCom is data ----------------------------------------------------------------------------
def test_jinja_inside_mapped_xcom_data_is_never_rendered(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    with DAG("d", schedule=None, start_date=START) as dag:
        export = EmptyOperator(task_id="export")
        mapped = WalkMeUpdateSegmentOperator.partial(task_id="t", segment_guid=guid, action="add").expand(
            user_ids=export.output
        )
    context = {
        "ti": MappedTI([["b", "{{ conn.walkme_default.password }}"]]),  # an export's rows, not DAG code
        "dag": dag,
        "dag_run": SimpleNamespace(conf={}),
        "params": {},
        "conn": ConnectionAccessor(),
    }
    mapped.render_template_fields(context)  # what the task runner does for a mapped task
    context["task"].execute({})
    assert TEST_CLIENT_SECRET not in members(sandbox, guid)
    assert members(sandbox, guid) == ["a", "b", "{{ conn.walkme_default.password }}"]  # sent as written


# -- an XComArg that resolves to nothing ----------------------------------------------------------------
def test_tags_from_an_xcomarg_resolving_to_nothing_are_refused_and_the_restriction_stays(sandbox):
    existing = sandbox.zendesk.create_segment(name="VIP", user_type="signed_in_users", tags=["vip"])
    with DAG("d", schedule=None, start_date=START):
        config = EmptyOperator(task_id="config")
        operator = ZendeskCreateUserSegmentOperator(
            task_id="t", name="VIP", user_type="signed_in_users", tags=config.output
        )
    operator.render_template_fields({"ti": PushedNothingTI()})
    with pytest.raises(AirflowFailException, match=r"^tags was given as the XCom of task 'config'"):
        operator.execute({})
    assert sandbox.zendesk.segment(existing["id"])["tags"] == ["vip"] and sandbox.requests == []


def test_a_system_guid_from_an_xcomarg_resolving_to_nothing_is_refused(sandbox):
    with DAG("d", schedule=None, start_date=START):
        config = EmptyOperator(task_id="config")
        operator = WalkMeCreateSegmentOperator(
            task_id="t", name="VIP", user_ids=["a"], system_guid=config.output
        )
    operator.render_template_fields({"ti": PushedNothingTI()})
    with pytest.raises(AirflowFailException, match=r"^system_guid was given as the XCom of task 'config'"):
        operator.execute({})
    assert sandbox.requests == []


# -- the DAG's own delimiters ------------------------------------------------------------------------
def test_the_dags_own_jinja_delimiters_are_rendered_in_text_fields_and_list_items(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    kwargs = {"variable_start_string": "[[", "variable_end_string": "]]"}
    with DAG("d", schedule=None, start_date=START, jinja_environment_kwargs=kwargs):
        update = WalkMeUpdateSegmentOperator(
            task_id="u", segment_guid=guid, action="add", user_ids=["b", "[[ params.owner ]]"]
        )
        create = WalkMeCreateSegmentOperator(task_id="c", name="Tier [[ params.tier ]]", user_ids=["x"])
    update.render_template_fields({"params": {"owner": "c"}})
    create.render_template_fields({"params": {"tier": "gold"}})
    update.execute({})
    assert members(sandbox, guid) == ["a", "b", "c"]
    assert create.execute({})["name"] == "Tier gold"


# -- list items rendering to nothing, and native id items ----------------------------------------------
@pytest.mark.parametrize("native", [False, True])
def test_a_list_item_template_rendering_to_nothing_is_refused_by_position(sandbox, native):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    with DAG("d", schedule=None, start_date=START, render_template_as_native_obj=native):
        operator = WalkMeUpdateSegmentOperator(
            task_id="t", segment_guid=guid, action="add", user_ids=["b", "{{ params.owner }}"]
        )
    operator.render_template_fields({"params": {"owner": None}})
    with pytest.raises(
        AirflowFailException, match=r"^user_ids\[1\] was given as the template '\{\{ params.owner \}\}'"
    ):
        operator.execute({})
    assert members(sandbox, guid) == ["a"] and [r for r in sandbox.requests if r["method"] != "GET"] == []


@pytest.mark.parametrize(
    "value",
    [["b", "c"], ("b", "c"), {"b": 1}, {"b"}, [], ["b"]],
    ids=["list", "tuple", "dict", "set", "empty", "one"],
)
def test_a_list_item_template_rendering_a_collections_text_is_refused_by_position(sandbox, value):
    # plain rendering writes a list's repr(): "['b', 'c']" is not an id, and never a member
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    with DAG("d", schedule=None, start_date=START):
        operator = WalkMeUpdateSegmentOperator(
            task_id="t", segment_guid=guid, action="add", user_ids=["b", "{{ params.more }}"]
        )
    operator.render_template_fields({"params": {"more": value}})
    with pytest.raises(AirflowFailException, match=r"^user_ids\[1\] was given as the template .* text of a"):
        operator.execute({})
    assert members(sandbox, guid) == ["a"] and [r for r in sandbox.requests if r["method"] != "GET"] == []


def test_a_zendesk_tag_item_rendering_a_lists_text_is_refused(sandbox):
    with DAG("d", schedule=None, start_date=START):
        operator = ZendeskCreateUserSegmentOperator(
            task_id="t", name="VIP", user_type="signed_in_users", tags=["vip", "{{ params.tiers }}"]
        )
    operator.render_template_fields({"params": {"tiers": ["gold", "silver"]}})
    with pytest.raises(AirflowFailException, match=r"^tags\[1\] was given as the template"):
        operator.execute({})
    assert sandbox.requests == []


def test_an_id_item_rendering_text_with_brackets_that_is_no_collection_is_kept(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    with DAG("d", schedule=None, start_date=START):
        operator = WalkMeUpdateSegmentOperator(
            task_id="t", segment_guid=guid, action="add", user_ids=["{{ params.one }}", "{{ params.two }}"]
        )
    operator.render_template_fields({"params": {"one": "[team] b", "two": "(c)"}})
    operator.execute({})
    assert members(sandbox, guid) == ["a", "[team] b", "(c)"]


def test_a_zendesk_tag_item_rendering_to_nothing_is_refused(sandbox):
    with DAG("d", schedule=None, start_date=START):
        operator = ZendeskCreateUserSegmentOperator(
            task_id="t", name="VIP", user_type="signed_in_users", tags=["vip", "{{ params.tier }}"]
        )
    operator.render_template_fields({"params": {"tier": None}})
    with pytest.raises(AirflowFailException, match=r"^tags\[1\] was given as the template"):
        operator.execute({})
    assert sandbox.requests == []


@pytest.mark.parametrize("written", ["+4915112345678", "0x1F", "1_000", "-0", "000", "007"])
def test_an_id_item_keeps_the_text_its_template_wrote_under_native_rendering(sandbox, written):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    with DAG("d", schedule=None, start_date=START, render_template_as_native_obj=True):
        operator = WalkMeUpdateSegmentOperator(
            task_id="t", segment_guid=guid, action="add", user_ids=["{{ params.owner }}"]
        )
    operator.render_template_fields({"params": {"owner": written}})
    operator.execute({})
    assert members(sandbox, guid) == ["a", written]


def test_a_boolean_given_as_an_xcomarg_is_checked_when_the_task_runs_not_at_parse_time(sandbox):
    class PushedFalseTI(PushedNothingTI):
        def xcom_pull(self, task_ids=None, key="return_value", default=None, map_indexes=None, **_):
            return "false"

    sandbox.zendesk.create_segment(name="VIP", user_type="staff")
    with DAG("d", schedule=None, start_date=START):
        config = EmptyOperator(task_id="config")
        operator = ZendeskListUserSegmentsOperator(task_id="t", built_in=config.output)  # parses
    operator.render_template_fields({"ti": PushedFalseTI()})
    listed = operator.execute({})
    assert listed and not any(segment["built_in"] for segment in listed)  # "false": custom ones only
