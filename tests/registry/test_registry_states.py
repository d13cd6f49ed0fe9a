"""The one transition table: every state change of the registry goes through it.

The expected moves are written out by hand from the state diagram in docs/registry.md
("States"), not read from bremen_robot.registry.states.
"""

from __future__ import annotations

import itertools

import pytest
from registry_helpers import ArtifactFactory

from bremen_robot.registry import Registry, RegistryError
from bremen_robot.registry.states import TRANSITIONS, PolicyState, can_move, check_move

S = PolicyState
# docs/registry.md: candidate -> approved | rejected; approved -> deployed | rejected | retired;
# deployed -> retired; rejected and retired are final. Entering the registry: register ->
# candidate, record_random_deployment -> deployed (the random pseudo-policy).
ALLOWED = {
    (None, "candidate"),
    (None, "deployed"),
    ("candidate", "approved"),
    ("candidate", "rejected"),
    ("approved", "deployed"),
    ("approved", "rejected"),
    ("approved", "retired"),
    ("deployed", "retired"),
}
STATE_NAMES = ["candidate", "approved", "rejected", "deployed", "retired"]


def test_the_states_are_the_five_of_the_docs_stored_by_name() -> None:
    assert [s.value for s in PolicyState] == STATE_NAMES
    assert PolicyState.APPROVED == "approved" and f"{PolicyState.APPROVED}" == "approved"


@pytest.mark.parametrize(("src", "dst"), list(itertools.product([None, *STATE_NAMES], STATE_NAMES)), ids=str)
def test_the_table_allows_exactly_the_documented_moves(src: str | None, dst: str) -> None:
    src_state = None if src is None else PolicyState(src)
    dst_state = PolicyState(dst)
    expected = (src, dst) in ALLOWED
    assert can_move(src_state, dst_state) is expected
    if expected:
        check_move(src_state, dst_state)
    else:
        with pytest.raises(RegistryError, match=f"cannot move from .* to {dst}"):
            check_move(src_state, dst_state)


def test_every_writer_goes_through_the_table(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a move taken out of the table, the method that makes it refuses and writes nothing."""
    rec = registry.register(artifact_factory())
    registry.approve(rec.id, "alice")
    # mark_deployed used to write 'deployed' itself, bypassing the table
    monkeypatch.setitem(TRANSITIONS, S.APPROVED, (S.REJECTED, S.RETIRED))
    with pytest.raises(RegistryError):
        registry.mark_deployed(rec.id)
    assert registry.get(rec.id).state == "approved" and registry.deployment_count() == 0
    monkeypatch.undo()
    # so did record_random_deployment (and register, for its entry)
    monkeypatch.setitem(TRANSITIONS, None, (S.CANDIDATE,))
    with pytest.raises(RegistryError, match="cannot move from"):
        registry.record_random_deployment("uniform random")
    assert registry.deployment_count() == 0 and [r.id for r in registry.policies()] == [rec.id]
    monkeypatch.setitem(TRANSITIONS, None, ())
    with pytest.raises(RegistryError, match="cannot move from"):
        registry.register(artifact_factory())
    assert [r.id for r in registry.policies()] == [rec.id]
    monkeypatch.undo()
    assert registry.record_random_deployment("uniform random") == 1
    assert registry.mark_deployed(rec.id) == 2
    assert [a.to_state for a in registry.audit(rec.id)] == ["candidate", "approved", "deployed"]
