"""State changes of registered policies: approve, reject, retire, deploy (docs/registry.md).

Every change goes through :meth:`StateChanges._change_state`, which checks it against the one
table :data:`bremen_robot.registry.states.TRANSITIONS` and writes it with its audit row, inside
the caller's ``BEGIN IMMEDIATE`` transaction. :class:`~bremen_robot.registry.store.Registry`
inherits these methods; they are here to keep the store's lookup and registration apart.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bremen_robot.registry import db
from bremen_robot.registry.errors import ApprovalError, RegistryError
from bremen_robot.registry.guard import GuardedConnection
from bremen_robot.registry.hints import bremen_command
from bremen_robot.registry.operators import check_and_bind, check_key_owner
from bremen_robot.registry.records import RANDOM_POLICY_ID, PolicyRecord, short_id
from bremen_robot.registry.signing import (
    canonical_payload,
    check_operator_name,
    key_fingerprint,
    key_paths,
    load_private_key,
    sign_payload,
    verify_signature,
)
from bremen_robot.registry.states import PolicyState, can_move, check_move, policy_state


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


class StateChanges:
    """The state-changing half of the registry (mixed into ``Registry``)."""

    _conn: GuardedConnection
    db_path: Path
    workspace: Path

    # provided by Registry
    def resolve(self, id_or_prefix: str) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def get(self, id_or_prefix: str) -> PolicyRecord:  # pragma: no cover - overridden
        raise NotImplementedError

    def _record(self, sha: str) -> PolicyRecord:  # pragma: no cover - overridden
        raise NotImplementedError

    def verify_store(self, record: PolicyRecord) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    # ------------------------------------------------------------------ the one write path
    def _append_audit(
        self, sha: str, at: str, actor: str, from_state: str | None, to_state: str, note: str
    ) -> None:
        self._conn.execute(
            "INSERT INTO audit (policy_sha256, at, actor, from_state, to_state, note)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (sha, at, actor, from_state, to_state, note),
        )

    def _change_state(
        self,
        sha: str,
        from_state: PolicyState | None,
        to_state: PolicyState,
        actor: str,
        at: str,
        note: str,
    ) -> None:
        """Move ``sha`` from ``from_state`` to ``to_state`` with its audit row; RegistryError if
        the table does not allow it. Inside the caller's transaction, with ``from_state`` read
        under its lock. ``from_state`` None: the caller has just inserted the policy's row, in
        ``to_state``."""
        check_move(from_state, to_state)
        if from_state is not None:
            self._conn.execute("UPDATE policies SET state = ? WHERE sha256 = ?", (to_state.value, sha))
        self._append_audit(sha, at, actor, from_state, to_state.value, note)

    def _command(self, args: str) -> str:
        return bremen_command(args, self.workspace)

    def _state(self, sha: str) -> PolicyState:
        row = self._conn.query("SELECT state FROM policies WHERE sha256 = ?", (sha,)).fetchone()
        if row is None:
            raise RegistryError(
                f"no policy with id '{short_id(sha)}' in {self.db_path}; see 'bremen policies'"
            )
        return policy_state(row["state"], f"registry '{self.db_path}', policy {short_id(sha)}")

    def _last_transition(self, sha: str, to_state: str) -> tuple[str, str, str] | None:
        row = self._conn.query(
            "SELECT actor, at, note FROM audit WHERE policy_sha256 = ? AND to_state = ?"
            " ORDER BY seq DESC LIMIT 1",
            (sha, to_state),
        ).fetchone()
        return (row["actor"], row["at"], row["note"]) if row else None

    def state_reason(self, sha: str, state: str) -> str:
        """One line saying why a policy in ``state`` may not run, with its history."""
        pid = short_id(sha)
        if state == PolicyState.CANDIDATE:
            return (
                f"policy {pid} is a candidate, not approved; review it with "
                f"'{self._command(f'review {pid}')}' and approve it with "
                f"'{self._command(f'approve {pid} --operator NAME')}'"
            )
        last = self._last_transition(sha, state)
        who = f" by {last[0]} at {last[1]}" if last else ""
        why = f": {last[2]}" if last and last[2] else ""
        if state == PolicyState.REJECTED:
            return f"policy {pid} was rejected{who}{why}"
        if state == PolicyState.RETIRED:
            return f"policy {pid} was retired{who}{why}"
        if state == PolicyState.APPROVED:
            return f"policy {pid} is already approved{who}"
        deps = self._conn.query("SELECT number FROM deployments WHERE policy_sha256 = ?", (sha,)).fetchone()
        return f"policy {pid} is already deployed (deployment {deps['number'] if deps else '?'}){who}"

    def _transition(
        self,
        policy_id: str,
        to_state: PolicyState,
        actor: str,
        note: str,
        hints: dict[str, str] | None = None,
        inside: Callable[[str, str], None] | None = None,
        at: str | None = None,
    ) -> PolicyRecord:
        """Move one policy to ``to_state`` in one transaction with its audit row. The state is read
        under the write lock: of two racing transitions only one sees the old state."""
        sha = self.resolve(policy_id)
        if sha == RANDOM_POLICY_ID:
            raise RegistryError("the random first-deployment policy has no states to change")
        now = at or _now()
        with db.transaction(self._conn):
            state = self._state(sha)
            if not can_move(state, to_state):
                hint = (hints or {}).get(state)
                raise ApprovalError(f"{self.state_reason(sha, state)}{'; ' + hint if hint else ''}")
            if inside is not None:
                inside(sha, now)
            self._change_state(sha, state, to_state, actor, now, note)
        return self._record(sha)

    # ------------------------------------------------------------------ operator actions
    def approve(
        self,
        id: str,
        operator_name: str,
        private_key_path: Path | None = None,
        note: str = "",
        before_signing: Callable[[Ed25519PublicKey], None] | None = None,
    ) -> PolicyRecord:
        """Sign and record an operator's approval of a candidate.

        The key defaults to ``<operator dir>/<operator_name>.key`` and must be that operator's
        (:mod:`.operators`). The signature covers (artifact sha256, manifest digest, operator, time,
        note). The store files are hashed first: a tampered artifact cannot be approved. Of two racing
        approvals exactly one succeeds; the other raises ApprovalError ("already approved by").

        ``before_signing(public_key)``: the caller's own refusal (``bremen approve``: the campaign
        robot's trust), run once the key is known to be the operator's and before anything is
        signed, so every refusal of one approval comes from here, in this order."""
        check_operator_name(operator_name)
        if not isinstance(note, str):
            raise RegistryError("the approval note must be text")
        rec = self.get(id)
        if rec.is_random:
            raise RegistryError("the random first-deployment policy needs no approval")
        if not can_move(rec.state, PolicyState.APPROVED):
            raise ApprovalError(self.state_reason(rec.sha256, rec.state))
        self.verify_store(rec)
        key_path = Path(private_key_path) if private_key_path is not None else key_paths(operator_name)[0]
        key = load_private_key(key_path)
        check_key_owner(self._conn, operator_name, key_path, key.public_key())
        if before_signing is not None:
            before_signing(key.public_key())
        time = _now()
        payload = canonical_payload(rec.sha256, rec.manifest_digest, operator_name, time, note)
        signature = sign_payload(key, payload)
        fingerprint = key_fingerprint(key.public_key())
        if not verify_signature(payload, signature, key.public_key()):  # pragma: no cover - library failure
            raise ApprovalError("the new signature does not verify; the cryptography install is broken")

        def insert_approval(sha: str, now: str) -> None:
            check_and_bind(self._conn, operator_name, key_path, key.public_key(), time)  # under the lock
            self._conn.execute(
                "INSERT INTO approvals (policy_sha256, operator, approved_at, note, payload, signature,"
                " key_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sha, operator_name, time, note, payload, signature, fingerprint),
            )

        return self._transition(
            rec.sha256, PolicyState.APPROVED, operator_name, note, inside=insert_approval, at=time
        )

    def reject(self, id: str, reason: str, operator: str | None = None) -> PolicyRecord:
        """Reject a candidate (or withdraw an approval before deployment) with a reason."""
        if not isinstance(reason, str) or not reason.strip():
            raise RegistryError("a rejection needs a reason; pass --reason TEXT")
        who = check_operator_name(operator) if operator else _current_user()
        retire = self._command(f"retire {short_id(self.resolve(id))}")
        return self._transition(
            id,
            PolicyState.REJECTED,
            who,
            reason.strip(),
            hints={"deployed": f"retire it instead with '{retire}'"},
        )

    def retire(self, id: str, operator: str | None = None, note: str = "") -> PolicyRecord:
        """Take an approved or deployed policy out of service for good."""
        who = check_operator_name(operator) if operator else _current_user()
        reject = self._command(f"reject {short_id(self.resolve(id))} --reason TEXT")
        return self._transition(
            id, PolicyState.RETIRED, who, note, hints={"candidate": f"reject it instead with '{reject}'"}
        )

    # ------------------------------------------------------------------ deployments
    def mark_deployed(
        self, id: str, deployment: int | None = None, *, actor: str | None = None, note: str = ""
    ) -> int:
        """Record that an approved policy has collected data (its first logged transition; see
        docs/registry.md); returns its deployment number.

        The first time, the policy moves ``approved -> deployed`` and gets the next deployment
        number (``deployment``, when given, must equal it). Marking a deployed policy again
        returns its existing number without counting it twice.
        """
        if deployment is not None and (isinstance(deployment, bool) or not isinstance(deployment, int)):
            raise RegistryError(f"deployment must be an integer, got {deployment!r}")
        sha = self.resolve(id)
        who = actor or _current_user()
        with db.transaction(self._conn):
            state = self._state(sha)
            existing = self._conn.query(
                "SELECT number FROM deployments WHERE policy_sha256 = ?", (sha,)
            ).fetchone()
            if existing is not None:
                number = int(existing["number"])
                if deployment is not None and deployment != number:
                    raise RegistryError(
                        f"policy {short_id(sha)} is already deployment {number}, not {deployment}"
                    )
                if state == PolicyState.RETIRED:
                    raise ApprovalError(self.state_reason(sha, state))
                return number
            if not can_move(state, PolicyState.DEPLOYED):
                raise ApprovalError(self.state_reason(sha, state))
            if (
                self._conn.execute("SELECT 1 FROM approvals WHERE policy_sha256 = ?", (sha,)).fetchone()
                is None
            ):
                raise ApprovalError(
                    f"policy {short_id(sha)} has no signed approval; approve it with "
                    f"'{self._command(f'approve {short_id(sha)} --operator NAME')}'"
                )
            number = int(
                self._conn.query("SELECT COALESCE(MAX(number), 0) + 1 AS next FROM deployments").fetchone()[
                    "next"
                ]
            )
            if deployment is not None and deployment != number:
                raise RegistryError(
                    f"deployments are numbered consecutively: the next one is {number}, not {deployment}"
                )
            now = _now()
            self._conn.execute(
                "INSERT INTO deployments (number, policy_sha256, deployed_at, actor, note)"
                " VALUES (?, ?, ?, ?, ?)",
                (number, sha, now, who, note),
            )
            self._change_state(sha, state, PolicyState.DEPLOYED, who, now, note or f"deployment {number}")
        return number

    def record_random_deployment(
        self, note: str = "", *, robot: str = "", task: str = "", actor: str | None = None
    ) -> int:
        """Record the uniform-random first-deployment policy as deployment 1 (idempotent).

        It needs no approval (it is explicit: ``--random``), is stored as a pseudo-policy with id
        and kind ``random``, and can only be deployment 1.
        """
        who = actor or _current_user()
        with db.transaction(self._conn):
            row = self._conn.query(
                "SELECT number FROM deployments WHERE policy_sha256 = ?", (RANDOM_POLICY_ID,)
            ).fetchone()
            if row is not None:
                return int(row["number"])
            count = int(self._conn.query("SELECT COUNT(*) AS n FROM deployments").fetchone()["n"])
            if count:
                raise RegistryError(
                    "the random policy can only be the first deployment, "
                    f"but this registry already has {count}"
                )
            now = _now()
            check_move(None, PolicyState.DEPLOYED)  # before the INSERT writes the state
            self._conn.execute(
                "INSERT INTO policies (sha256, state, kind, robot, task, created_at, registered_at,"
                " manifest_digest, manifest_json, report_json, lineage_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, '', '{}', '{}', '{}')",
                (RANDOM_POLICY_ID, PolicyState.DEPLOYED.value, RANDOM_POLICY_ID, robot, task, now, now),
            )
            self._conn.execute(
                "INSERT INTO deployments (number, policy_sha256, deployed_at, actor, note)"
                " VALUES (1, ?, ?, ?, ?)",
                (RANDOM_POLICY_ID, now, who, note),
            )
            audit_note = note or "deployment 1 (random policy)"
            self._change_state(RANDOM_POLICY_ID, None, PolicyState.DEPLOYED, who, now, audit_note)
        return 1
