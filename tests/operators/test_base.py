"""What every operator shares: text fields stay text under native rendering, strict booleans."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_segments._compat import ObjectStoragePath
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.operators import walkme, zendesk
from airflow_provider_segments.operators._base import coerce_bool
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeDeleteSegmentOperator,
    WalkMeSyncSegmentOperator,
)
from airflow_provider_segments.operators.zendesk import ZendeskCreateUserSegmentOperator
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
#: Template fields that are deliberately not text: ids, lists of ids, lists of tags, booleans.
NOT_TEXT = {
    "user_ids",
    "user_segment_id",
    "user_id",
    "group_ids",
    "organization_ids",
    "added_user_ids",
    "tags",
    "or_tags",
    "built_in",
    "applicable",
    "missing_ok",
    "if_exists",
    "expected_user_count",  # a count: a native int or its digits
}
OPERATORS = [
    cls
    for module in (walkme, zendesk)
    for name, cls in vars(module).items()
    if isinstance(cls, type)
    and name.endswith("Operator")
    and not name.startswith("_")
    and cls.__module__ == module.__name__
] + [WalkMeSegmentPropagationSensor]


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda cls: cls.__name__)
def test_every_template_field_is_classified_as_text_or_not(operator):
    unclassified = set(operator.template_fields) - set(operator.text_fields) - NOT_TEXT
    assert not unclassified, f"{operator.__name__}: is {unclassified} text? add it to text_fields or NOT_TEXT"


def _render(op, params):
    op.render_template_fields({"params": params})
    return op


def test_text_fields_render_as_written_and_the_rest_natively():
    with DAG(
        "native", schedule=None, start_date=pendulum.datetime(2026, 1, 1), render_template_as_native_obj=True
    ):
        create = WalkMeCreateSegmentOperator(
            task_id="c",
            name="{{ params.name }}",
            external_id="{{ params.ext }}",
            system_guid="{{ params.none }}",
            user_ids="{{ params.ids }}",
        )
    _render(create, {"name": "1.10", "ext": "1e3", "none": None, "ids": ["007", 2]})
    # Native rendering would give 1.1, 1000.0; text fields keep what the template wrote.
    assert (create.name, create.external_id) == ("1.10", "1e3")
    assert create.system_guid is None  # an optional field left unset stays unset
    assert create.user_ids == ["007", 2]  # not a text field: the list as the expression gave it


def test_a_path_object_from_a_template_is_kept_and_a_number_becomes_text():
    with DAG(
        "native2", schedule=None, start_date=pendulum.datetime(2026, 1, 1), render_template_as_native_obj=True
    ):
        op = WalkMeSyncSegmentOperator(
            task_id="s", name="{{ params.n }}", user_ids_path="{{ params.path }}", state_path="{{ params.n }}"
        )
    path = ObjectStoragePath("file:///tmp/ids.txt")
    _render(op, {"path": path, "n": 2026})
    assert op.user_ids_path is path
    assert (op.name, op.state_path) == ("2026", "2026")


def test_literal_text_is_not_rendered_and_tag_items_render_as_text():
    with DAG(
        "native3", schedule=None, start_date=pendulum.datetime(2026, 1, 1), render_template_as_native_obj=True
    ):
        op = ZendeskCreateUserSegmentOperator(
            task_id="c",
            name="2026",
            user_type="staff",
            tags=["0x10", "{{ params.t }}"],
            or_tags="{{ params.all }}",
        )
    _render(op, {"t": "1_000", "all": ["a", "b"]})
    assert (op.name, op.tags, op.or_tags) == ("2026", ["0x10", "1_000"], ["a", "b"])


def test_text_fields_render_the_same_without_native_rendering():
    with DAG("plain", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        op = WalkMeDeleteSegmentOperator(
            task_id="d", segment_guid="{{ params.g }}", missing_ok="{{ params.ok }}"
        )
    _render(op, {"g": GUID, "ok": False})
    assert (op.segment_guid, op.missing_ok) == (GUID, "False")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), (" False ", False), ("TRUE", True), ("fAlSe", False)],
)
def test_coerce_bool_accepts_booleans_and_their_two_words(value, expected):
    assert coerce_bool(value, "flag") is expected


@pytest.mark.parametrize("value", ["yes", "0", "1", "", "None", 0, 1, None, [], "Falsey"])
def test_coerce_bool_refuses_anything_else_naming_the_field(value):
    with pytest.raises(SegmentsValidationError, match=r"^dry_run .* is not valid: use True or False"):
        coerce_bool(value, "dry_run")
    assert coerce_bool(None, "built_in", allow_none=True) is None


def test_no_operator_re_declares_a_parameter_it_only_passes_on():
    import inspect

    from airflow_provider_segments.operators import walkme, zendesk
    from airflow_provider_segments.operators._base import SegmentsOperator

    operators = [
        cls
        for module in (walkme, zendesk)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, SegmentsOperator) and cls.__module__ == module.__name__
    ]
    assert len(operators) >= 10
    for cls in operators:
        if "__init__" not in vars(cls):
            continue
        own = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        for parent in cls.__mro__[1:]:
            if "__init__" in vars(parent) and issubclass(parent, SegmentsOperator):
                inherited = set(inspect.signature(parent.__init__).parameters) - {"self", "kwargs"}
                assert not own & inherited, (
                    f"{cls.__name__} re-declares {own & inherited} of {parent.__name__}"
                )


@pytest.mark.parametrize(
    "operator, expand",
    [
        ("walkme.WalkMeDeleteSegmentOperator", {"segment_guid": ["g"]}),
        ("zendesk.ZendeskDeleteUserSegmentOperator", {"user_segment_id": [1]}),
    ],
)
def test_a_mapped_operator_keeps_airflows_defaults_for_inlets_and_outlets(operator, expand):
    """Airflow's own defaults (empty inlets and outlets), not a signature's ``None``: a mapped task
    with ``inlets=None`` fails before it starts."""
    module, name = operator.split(".")
    cls = getattr({"walkme": walkme, "zendesk": zendesk}[module], name)
    with DAG("mapped", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        mapped = cls.partial(task_id="t").expand(**expand)
    assert mapped.partial_kwargs["inlets"] == [] and mapped.partial_kwargs["outlets"] == []
