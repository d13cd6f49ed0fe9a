"""The one parser of ``bremen/episode`` events that collect, sim_bridge and policy_runner share."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bremen_robot.ros.topics import episode_event


def test_an_event_of_the_named_source_is_returned_whole():
    data = '{"source": "policy_runner", "event": "stop", "id": 3, "steps": 40}'
    assert episode_event(data, "policy_runner") == {
        "source": "policy_runner",
        "event": "stop",
        "id": 3,
        "steps": 40,
    }


def test_other_senders_and_non_objects_are_ignored():
    assert episode_event('{"source": "sim_bridge", "event": "reset"}', "policy_runner") is None
    assert episode_event('{"event": "stop"}', "policy_runner") is None  # no source at all
    assert episode_event('["source", "policy_runner"]', "policy_runner") is None
    assert episode_event('"policy_runner"', "policy_runner") is None
    assert episode_event("{not json", "policy_runner") is None
    assert episode_event("", "policy_runner") is None


@given(st.text())
def test_no_text_makes_the_parser_raise(data):
    evt = episode_event(data, "policy_runner")
    assert evt is None or evt["source"] == "policy_runner"
