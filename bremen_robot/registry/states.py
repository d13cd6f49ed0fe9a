"""A policy's states and the one table of moves between them (docs/registry.md, "States").

Every change of a policy's state in the registry, including its entry (``None``: not yet
recorded), is checked against :data:`TRANSITIONS` by :func:`check_move`; the database's
trigger (:mod:`bremen_robot.registry.db`) is built from the same table and refuses any other
move even from hand-written SQL.
"""

from __future__ import annotations

from enum import Enum

from bremen_robot.registry.errors import RegistryDamagedError, RegistryError


class PolicyState(str, Enum):
    """A policy's state; the value is what the database stores (and what users see).

    A ``str``: it compares equal to its stored value (``PolicyState.APPROVED == "approved"``).
    """

    CANDIDATE = "candidate"
    APPROVED = "approved"
    REJECTED = "rejected"
    DEPLOYED = "deployed"
    RETIRED = "retired"

    def __str__(self) -> str:  # "approved", not "PolicyState.APPROVED", in messages
        return self.value


TRANSITIONS: dict[PolicyState | None, tuple[PolicyState, ...]] = {
    # entering the registry: a registered artifact, or the random pseudo-policy (deployment 1)
    None: (PolicyState.CANDIDATE, PolicyState.DEPLOYED),
    PolicyState.CANDIDATE: (PolicyState.APPROVED, PolicyState.REJECTED),
    PolicyState.APPROVED: (PolicyState.DEPLOYED, PolicyState.REJECTED, PolicyState.RETIRED),
    PolicyState.DEPLOYED: (PolicyState.RETIRED,),
    PolicyState.REJECTED: (),
    PolicyState.RETIRED: (),
}
"""from-state -> the states it may move to, in this order (the trigger's SQL follows it)."""


def can_move(from_state: PolicyState | None, to_state: PolicyState) -> bool:
    """Whether the table allows ``from_state -> to_state``."""
    return to_state in TRANSITIONS.get(from_state, ())


def check_move(from_state: PolicyState | None, to_state: PolicyState) -> None:
    """Refuse a move the table does not allow. The store gives users the friendly reason first
    (:meth:`Registry.state_reason`); reaching this refusal means a caller skipped that check."""
    if not can_move(from_state, to_state):
        shown = "(not registered)" if from_state is None else from_state.value
        raise RegistryError(
            f"a policy cannot move from {shown} to {to_state.value}; see the state table in docs/registry.md"
        )


def policy_state(value: object, where: str) -> PolicyState:
    """The state stored in the database; a value outside the table is damage."""
    try:
        return PolicyState(value)
    except ValueError:
        raise RegistryDamagedError(
            f"{where}: unknown policy state {value!r}; run 'bremen registry check'"
        ) from None
