"""Step tags (topics.make_tag / parse_tag / parse_command_id): old and new forms both read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bremen_robot.ros.topics import make_tag, parse_command_id, parse_tag


def test_a_tag_with_a_sequence_number_names_the_command():
    assert make_tag(3, 1_050_000_000, 17) == "bremen:3:1050000000:17"
    assert parse_command_id("bremen:3:1050000000:17") == (3, 1_050_000_000, 17)
    assert parse_tag("bremen:3:1050000000:17") == (3, 1_050_000_000)  # the state it answered


def test_an_older_runners_tag_reads_as_before_without_a_sequence_number():
    assert make_tag(-1, 42) == "bremen:-1:42"
    assert parse_tag("bremen:-1:42") == (-1, 42)
    assert parse_command_id("bremen:-1:42") == (-1, 42, None)


def test_labels_that_are_not_tags_are_refused():
    for label in ("", "safe", "reset:3", "joint_0", "bremen:", "bremen:1", "bremen:1:2:3:4", "bremen:x:2"):
        assert parse_tag(label) is None and parse_command_id(label) is None, label


@given(st.integers(-1, 10**6), st.integers(0, 2**63), st.one_of(st.none(), st.integers(0, 2**40)))
def test_every_tag_reads_back(episode, stamp, seq):
    assert parse_command_id(make_tag(episode, stamp, seq)) == (episode, stamp, seq)
