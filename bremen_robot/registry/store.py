"""The policy registry: content-addressed artifact store, states, approvals, deployments, audit.

Layout of a workspace (default ``$BREMEN_WORKSPACE`` or ``./bremen_ws``)::

    registry.sqlite              the database (or wherever --db / $BREMEN_REGISTRY_URL points)
    artifacts/<sha256>/          policy.pt + manifest.json, read-only, never overwritten

States: ``candidate -> approved | rejected``, ``approved -> deployed | rejected | retired``,
``deployed -> retired``. Every change of state is one ``BEGIN IMMEDIATE`` transaction together
with its append-only audit row, so concurrent writers serialize and a killed process leaves
either the whole change or none of it.

The deployment count is the number of rows in ``deployments``: each policy that collects data
gets the next number once (marking a deployed policy deployed again returns its number). The
uniform-random first-deployment policy is a pseudo-policy with id ``random`` and kind
``random``, recorded as deployment 1 without an approval.
"""

from __future__ import annotations

import builtins
import getpass
import os
import re
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bremen_robot.errors import ArtifactError
from bremen_robot.fsutil import fsync_dir
from bremen_robot.policy.artifact import (
    MANIFEST_FILE,
    POLICY_FILE,
    PolicyManifest,
    checked_artifact,
    load_artifact,
    load_manifest,
    manifest_digest,
    sha256_file,
)
from bremen_robot.registry import db
from bremen_robot.registry.errors import ApprovalError, RegistryError
from bremen_robot.registry.guard import GuardedConnection
from bremen_robot.registry.jsonio import json_object, read_report, to_json
from bremen_robot.registry.operators import check_and_bind
from bremen_robot.registry.signing import (
    canonical_payload,
    check_operator_name,
    key_fingerprint,
    key_paths,
    load_private_key,
    sign_payload,
    verify_signature,
)

WORKSPACE_ENV = "BREMEN_WORKSPACE"
REGISTRY_URL_ENV = "BREMEN_REGISTRY_URL"
DEFAULT_WORKSPACE = "bremen_ws"
DB_FILE = "registry.sqlite"
STORE_DIR = "artifacts"
REPORT_FILE = "report.json"
RANDOM_POLICY_ID = "random"
SHORT_ID_LEN = 12
MIN_PREFIX_LEN = 4

_HEX_RE = re.compile(r"^[0-9a-f]+$")


def default_workspace() -> Path:
    """``$BREMEN_WORKSPACE`` or ``./bremen_ws``."""
    env = os.environ.get(WORKSPACE_ENV)
    return Path(env).expanduser() if env else Path(DEFAULT_WORKSPACE)


def locate(workspace: Path | None, url: str | None) -> tuple[Path, Path]:
    """``(workspace, database file)`` from the arguments, ``$BREMEN_REGISTRY_URL`` and the defaults."""
    ws = Path(workspace).expanduser() if workspace is not None else default_workspace()
    url = url if url is not None else os.environ.get(REGISTRY_URL_ENV) or None
    return ws, db.parse_url(url) if url else ws / DB_FILE


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def short_id(sha256: str) -> str:
    """The id users see and type: the first 12 hex characters (``random`` stays ``random``)."""
    return sha256 if sha256 == RANDOM_POLICY_ID else sha256[:SHORT_ID_LEN]


@dataclass(frozen=True)
class Approval:
    """A signed approval: ``signature`` (base64 Ed25519) is over ``payload`` (canonical JSON)."""

    operator: str
    time: str
    note: str
    signature: str
    payload: str
    key_fingerprint: str


@dataclass(frozen=True)
class AuditRow:
    """One append-only audit entry: who moved which policy from which state to which, when, why."""

    seq: int
    policy_id: str
    sha256: str
    at: str
    actor: str
    from_state: str | None
    to_state: str
    note: str


@dataclass(frozen=True)
class PolicyRecord:
    """A registered policy as the registry knows it.

    ``id`` is the short prefix shown to users; ``sha256`` the full content address of policy.pt.
    ``lineage`` holds ``data_digests`` (training datasets), ``parent`` (full sha256 of the policy
    whose deployment collected the newest data, or ``random``) and ``deployment`` (the number
    of the deployment that produced that data), plus anything else the trainer recorded.
    """

    id: str
    sha256: str
    state: str
    kind: str
    robot: str
    task: str
    created_at: str
    registered_at: str
    manifest_digest: str
    manifest: dict[str, Any]
    lineage: dict[str, Any]
    report: dict[str, Any]
    approval: Approval | None
    deployments: list[int] = field(default_factory=list)
    artifact_dir: Path | None = None

    @property
    def is_random(self) -> bool:
        return self.kind == RANDOM_POLICY_ID and self.sha256 == RANDOM_POLICY_ID


class Registry:
    """Open with :meth:`Registry.open`; usable as a context manager (closes the connection)."""

    def __init__(
        self, conn: GuardedConnection, db_path: Path, workspace: Path, readonly: bool = False
    ) -> None:
        self.readonly = readonly
        self._conn = conn
        self.db_path = db_path
        self.workspace = workspace
        self.store_dir = workspace / STORE_DIR

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        workspace: Path | None = None,
        url: str | None = None,
        *,
        create: bool = True,
        readonly: bool = False,
    ) -> Registry:
        """Open (by default create and migrate) the registry of ``workspace``; ``url`` (or
        ``$BREMEN_REGISTRY_URL``, ``sqlite:///path``) points the database elsewhere. ``create=False``:
        a missing database is an error; ``readonly=True`` also never migrates or writes the file."""
        ws, db_path = locate(workspace, url)
        if (readonly or not create) and not db_path.is_file():
            raise RegistryError(
                f"no registry database at '{db_path}'; register a policy first or pass --workspace / --db"
            )
        return cls(db.connect(db_path, readonly=readonly), db_path, ws, readonly)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ lookup
    def resolve(self, id_or_prefix: str) -> str:
        """Full sha256 (or ``random``) of a policy id or unique prefix."""
        if not isinstance(id_or_prefix, str) or not id_or_prefix.strip():
            raise RegistryError("empty policy id; pass an id from 'bremen policies'")
        key = id_or_prefix.strip().lower()
        if key == RANDOM_POLICY_ID:
            if self._conn.execute("SELECT 1 FROM policies WHERE sha256 = ?", (key,)).fetchone() is None:
                raise RegistryError("no random deployment is recorded in this registry")
            return key
        if not _HEX_RE.match(key) or len(key) > 64:
            raise RegistryError(
                f"policy id '{id_or_prefix}' is not a sha256 prefix (hex digits); "
                "copy an id from 'bremen policies'"
            )
        if len(key) < MIN_PREFIX_LEN:
            raise RegistryError(
                f"policy id '{id_or_prefix}' is too short; type at least {MIN_PREFIX_LEN} characters"
            )
        rows = self._conn.execute(
            "SELECT sha256 FROM policies WHERE substr(sha256, 1, ?) = ? ORDER BY sha256 LIMIT 11",
            (len(key), key),
        ).fetchall()
        if not rows:
            raise RegistryError(
                f"no policy with id '{id_or_prefix}' in {self.db_path}; see 'bremen policies'"
            )
        if len(rows) > 1:
            shown = ", ".join(r[0][: max(SHORT_ID_LEN, len(key) + 4)] for r in rows[:10])
            more = " and more" if len(rows) > 10 else ""
            raise RegistryError(
                f"policy id '{id_or_prefix}' is ambiguous: it matches {shown}{more}; type more characters"
            )
        return str(rows[0][0])

    def get(self, id_or_prefix: str) -> PolicyRecord:
        """The policy with this id or unique prefix (clear errors for unknown and ambiguous ids)."""
        return self._record(self.resolve(id_or_prefix))

    def list(self) -> builtins.list[PolicyRecord]:
        """All policies, oldest registration first."""
        rows = self._conn.execute("SELECT sha256 FROM policies ORDER BY registered_at, sha256").fetchall()
        return [self._record(r[0]) for r in rows]

    def deployment_count(self) -> int:
        """Number of distinct policies that collected data (the quantity BREMEN minimizes)."""
        return int(self._conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0])

    def audit(self, id: str | None = None) -> builtins.list[AuditRow]:
        """The audit log, oldest first; of one policy when ``id`` is given."""
        sql = "SELECT seq, policy_sha256, at, actor, from_state, to_state, note FROM audit"
        args: tuple[Any, ...] = ()
        if id is not None:
            sql += " WHERE policy_sha256 = ?"
            args = (self.resolve(id),)
        rows = self._conn.execute(sql + " ORDER BY seq", args).fetchall()
        return [AuditRow(r[0], short_id(r[1]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def artifact_path(self, sha256: str) -> Path:
        """Store folder of an artifact (``<workspace>/artifacts/<sha256>``)."""
        return self.store_dir / sha256

    def _record(self, sha: str) -> PolicyRecord:
        row = self._conn.execute(
            "SELECT sha256, state, kind, robot, task, created_at, registered_at, manifest_digest,"
            " manifest_json, lineage_json, report_json FROM policies WHERE sha256 = ?",
            (sha,),
        ).fetchone()
        if row is None:
            raise RegistryError(
                f"no policy with id '{short_id(sha)}' in {self.db_path}; see 'bremen policies'"
            )
        arow = self._conn.execute(
            "SELECT operator, approved_at, note, signature, payload, key_fingerprint"
            " FROM approvals WHERE policy_sha256 = ?",
            (sha,),
        ).fetchone()
        deps = [
            int(r[0])
            for r in self._conn.execute(
                "SELECT number FROM deployments WHERE policy_sha256 = ? ORDER BY number", (sha,)
            )
        ]
        approval = Approval(*arow) if arow is not None else None
        kind = row[2]
        return PolicyRecord(
            id=short_id(row[0]),
            sha256=row[0],
            state=row[1],
            kind=kind,
            robot=row[3],
            task=row[4],
            created_at=row[5],
            registered_at=row[6],
            manifest_digest=row[7],
            manifest=json_object(row[8], "manifest_json", sha, self.db_path),
            lineage=json_object(row[9], "lineage_json", sha, self.db_path),
            report=json_object(row[10], "report_json", sha, self.db_path),
            approval=approval,
            deployments=deps,
            artifact_dir=None if row[0] == RANDOM_POLICY_ID else self.artifact_path(row[0]),
        )

    # ------------------------------------------------------------------ register
    def register(
        self,
        artifact_dir: Path,
        report: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> PolicyRecord:
        """Copy an exported artifact into the store and record it as a ``candidate``.

        ``report`` defaults to ``report.json`` in ``artifact_dir`` when present. ``lineage``
        may give ``parent`` (a policy id or ``random``), ``deployment`` (number of the
        deployment whose data trained it) and ``data_digests`` (default: the manifest's).
        Registering a sha256 that is already registered is a no-op returning the existing
        record (its report and lineage are kept as first written).
        """
        if self.readonly:  # before anything lands in the artifact store
            raise RegistryError(f"registry '{self.db_path}' was opened read-only; open it to write")
        src, manifest = checked_artifact(Path(artifact_dir))
        sha = manifest.policy_sha256
        if self._exists(sha):
            return self._record(sha)
        if report is None and (src / REPORT_FILE).is_file():
            report = read_report(src / REPORT_FILE)
        report_json = to_json(report if report is not None else {}, "report")
        lineage_json = to_json(self._normalize_lineage(lineage, manifest), "lineage")
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not the user's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            load_artifact(src, verify=True)  # refuse a file no robot could load before anyone reviews it
        stored_manifest = self._store_artifact(src, sha, manifest)
        digest = manifest_digest(stored_manifest)
        now = _now()
        who = actor or _current_user()
        with db.transaction(self._conn):
            if not self._exists(sha):  # another process may have registered it meanwhile
                self._conn.execute(
                    "INSERT INTO policies (sha256, state, kind, robot, task, created_at, registered_at,"
                    " manifest_digest, manifest_json, report_json, lineage_json)"
                    " VALUES (?, 'candidate', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        sha,
                        stored_manifest.kind,
                        stored_manifest.robot,
                        stored_manifest.task,
                        stored_manifest.created_at,
                        now,
                        digest,
                        stored_manifest.model_dump_json(),
                        report_json,
                        lineage_json,
                    ),
                )
                self._append_audit(sha, now, who, None, "candidate", f"registered from {src.resolve()}")
        return self._record(sha)

    def _exists(self, sha: str) -> bool:
        return self._conn.execute("SELECT 1 FROM policies WHERE sha256 = ?", (sha,)).fetchone() is not None

    def _normalize_lineage(self, lineage: dict[str, Any] | None, manifest: PolicyManifest) -> dict[str, Any]:
        if lineage is not None and not isinstance(lineage, dict):
            raise RegistryError(f"lineage must be a mapping, got {type(lineage).__name__}")
        lin = dict(lineage or {})
        digests = lin.get("data_digests", list(manifest.data_digests))
        if not isinstance(digests, builtins.list) or not all(isinstance(d, str) for d in digests):
            raise RegistryError("lineage.data_digests must be a list of sha256 strings")
        lin["data_digests"] = digests
        parent = lin.get("parent")
        if parent is not None:
            if not isinstance(parent, str):
                raise RegistryError("lineage.parent must be a policy id or 'random'")
            try:
                lin["parent"] = self.resolve(parent)
            except RegistryError as exc:
                raise RegistryError(f"lineage.parent: {exc}") from None
        else:
            lin["parent"] = None
        dep = lin.get("deployment")
        if dep is not None and (isinstance(dep, bool) or not isinstance(dep, int) or dep < 1):
            raise RegistryError(f"lineage.deployment must be a deployment number >= 1, got {dep!r}")
        lin["deployment"] = dep
        return lin

    def _store_artifact(self, src: Path, sha: str, manifest: PolicyManifest) -> PolicyManifest:
        """Put policy.pt and manifest.json under ``artifacts/<sha>/`` read-only; returns its manifest.

        An existing entry is verified and reused, never overwritten. A new entry is assembled in a
        hidden temporary folder and renamed into place, so the store never holds half an artifact.
        """
        dest = self.artifact_path(sha)
        if not dest.exists():
            self.store_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=self.store_dir, prefix=f".incoming-{sha[:12]}-"))
            try:
                for name in (POLICY_FILE, MANIFEST_FILE):
                    shutil.copyfile(src / name, tmp / name)
                    with open(tmp / name, "rb") as f:
                        os.fsync(f.fileno())
                    os.chmod(tmp / name, 0o444)
                if sha256_file(tmp / POLICY_FILE) != sha:
                    raise ArtifactError(f"{src / POLICY_FILE} changed while it was being registered; retry")
                try:
                    os.rename(tmp, dest)
                except OSError:
                    if not dest.is_dir():  # not a lost race with another registering process
                        raise
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            fsync_dir(self.store_dir)
        stored = self._check_store_entry(sha, dest)
        if manifest_digest(stored) != manifest_digest(manifest):
            raise RegistryError(
                f"the artifact store already holds policy {sha[:12]} with a different manifest.json; "
                f"register that one ({dest}) or re-export the policy"
            )
        if stat.S_IMODE(dest.stat().st_mode) != 0o555:
            os.chmod(dest, 0o555)  # after the rename: files and folder read-only from now on
        return stored

    def _check_store_entry(self, sha: str, dest: Path) -> PolicyManifest:
        ppath = dest / POLICY_FILE
        if not ppath.is_file() or sha256_file(ppath) != sha:
            raise RegistryError(
                f"artifact store entry '{dest}' is damaged (policy.pt missing or its hash differs); "
                "move it aside and register the artifact again"
            )
        return load_manifest(dest)

    # ------------------------------------------------------------------ transitions
    def _append_audit(
        self, sha: str, at: str, actor: str, from_state: str | None, to_state: str, note: str
    ) -> None:
        self._conn.execute(
            "INSERT INTO audit (policy_sha256, at, actor, from_state, to_state, note)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (sha, at, actor, from_state, to_state, note),
        )

    def _state(self, sha: str) -> str:
        row = self._conn.execute("SELECT state FROM policies WHERE sha256 = ?", (sha,)).fetchone()
        if row is None:
            raise RegistryError(
                f"no policy with id '{short_id(sha)}' in {self.db_path}; see 'bremen policies'"
            )
        return str(row[0])

    def _last_transition(self, sha: str, to_state: str) -> tuple[str, str, str] | None:
        row = self._conn.execute(
            "SELECT actor, at, note FROM audit WHERE policy_sha256 = ? AND to_state = ?"
            " ORDER BY seq DESC LIMIT 1",
            (sha, to_state),
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def state_reason(self, sha: str, state: str) -> str:
        """One line saying why a policy in ``state`` may not run, with its history."""
        pid = short_id(sha)
        if state == "candidate":
            return (
                f"policy {pid} is a candidate, not approved; review it with 'bremen review {pid}' "
                f"and approve it with 'bremen approve {pid} --operator NAME'"
            )
        last = self._last_transition(sha, state)
        who = f" by {last[0]} at {last[1]}" if last else ""
        why = f": {last[2]}" if last and last[2] else ""
        if state == "rejected":
            return f"policy {pid} was rejected{who}{why}"
        if state == "retired":
            return f"policy {pid} was retired{who}{why}"
        if state == "approved":
            return f"policy {pid} is already approved{who}"
        deps = self._conn.execute("SELECT number FROM deployments WHERE policy_sha256 = ?", (sha,)).fetchone()
        return f"policy {pid} is already deployed (deployment {deps[0] if deps else '?'}){who}"

    def _transition(
        self,
        policy_id: str,
        to_state: str,
        allowed_from: tuple[str, ...],
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
            if state not in allowed_from:
                hint = (hints or {}).get(state)
                raise ApprovalError(f"{self.state_reason(sha, state)}{'; ' + hint if hint else ''}")
            if inside is not None:
                inside(sha, now)
            self._conn.execute("UPDATE policies SET state = ? WHERE sha256 = ?", (to_state, sha))
            self._append_audit(sha, now, actor, state, to_state, note)
        return self._record(sha)

    def approve(
        self, id: str, operator_name: str, private_key_path: Path | None = None, note: str = ""
    ) -> PolicyRecord:
        """Sign and record an operator's approval of a candidate.

        The key defaults to ``<operator dir>/<operator_name>.key`` and must be that operator's
        (:mod:`.operators`). The signature covers (artifact sha256, manifest digest, operator, time,
        note). The store files are hashed first: a tampered artifact cannot be approved. Of two racing
        approvals exactly one succeeds; the other raises ApprovalError ("already approved by")."""
        check_operator_name(operator_name)
        if not isinstance(note, str):
            raise RegistryError("the approval note must be text")
        rec = self.get(id)
        if rec.is_random:
            raise RegistryError("the random first-deployment policy needs no approval")
        if rec.state != "candidate":
            raise ApprovalError(self.state_reason(rec.sha256, rec.state))
        self.verify_store(rec)
        key_path = Path(private_key_path) if private_key_path is not None else key_paths(operator_name)[0]
        key = load_private_key(key_path)
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
            rec.sha256, "approved", ("candidate",), operator_name, note, inside=insert_approval, at=time
        )

    def reject(self, id: str, reason: str, operator: str | None = None) -> PolicyRecord:
        """Reject a candidate (or withdraw an approval before deployment) with a reason."""
        if not isinstance(reason, str) or not reason.strip():
            raise RegistryError("a rejection needs a reason; pass --reason TEXT")
        who = check_operator_name(operator) if operator else _current_user()
        return self._transition(
            id,
            "rejected",
            ("candidate", "approved"),
            who,
            reason.strip(),
            hints={"deployed": f"retire it instead with 'bremen retire {short_id(self.resolve(id))}'"},
        )

    def retire(self, id: str, operator: str | None = None, note: str = "") -> PolicyRecord:
        """Take an approved or deployed policy out of service for good."""
        who = check_operator_name(operator) if operator else _current_user()
        pid = short_id(self.resolve(id))
        return self._transition(
            id,
            "retired",
            ("approved", "deployed"),
            who,
            note,
            hints={"candidate": f"reject it instead with 'bremen reject {pid} --reason TEXT'"},
        )

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
            existing = self._conn.execute(
                "SELECT number FROM deployments WHERE policy_sha256 = ?", (sha,)
            ).fetchone()
            if existing is not None:
                number = int(existing[0])
                if deployment is not None and deployment != number:
                    raise RegistryError(
                        f"policy {short_id(sha)} is already deployment {number}, not {deployment}"
                    )
                if state == "retired":
                    raise ApprovalError(self.state_reason(sha, state))
                return number
            if state != "approved":
                raise ApprovalError(self.state_reason(sha, state))
            if (
                self._conn.execute("SELECT 1 FROM approvals WHERE policy_sha256 = ?", (sha,)).fetchone()
                is None
            ):
                raise ApprovalError(
                    f"policy {short_id(sha)} has no signed approval; approve it with 'bremen approve'"
                )
            number = int(
                self._conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM deployments").fetchone()[0]
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
            self._conn.execute("UPDATE policies SET state = 'deployed' WHERE sha256 = ?", (sha,))
            self._append_audit(sha, now, who, state, "deployed", note or f"deployment {number}")
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
            row = self._conn.execute(
                "SELECT number FROM deployments WHERE policy_sha256 = ?", (RANDOM_POLICY_ID,)
            ).fetchone()
            if row is not None:
                return int(row[0])
            count = int(self._conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0])
            if count:
                raise RegistryError(
                    "the random policy can only be the first deployment, "
                    f"but this registry already has {count}"
                )
            now = _now()
            self._conn.execute(
                "INSERT INTO policies (sha256, state, kind, robot, task, created_at, registered_at,"
                " manifest_digest, manifest_json, report_json, lineage_json)"
                " VALUES (?, 'deployed', ?, ?, ?, ?, ?, '', '{}', '{}', '{}')",
                (RANDOM_POLICY_ID, RANDOM_POLICY_ID, robot, task, now, now),
            )
            self._conn.execute(
                "INSERT INTO deployments (number, policy_sha256, deployed_at, actor, note)"
                " VALUES (1, ?, ?, ?, ?)",
                (RANDOM_POLICY_ID, now, who, note),
            )
            self._append_audit(
                RANDOM_POLICY_ID, now, who, None, "deployed", note or "deployment 1 (random policy)"
            )
        return 1

    # ------------------------------------------------------------------ integrity
    def verify_store(self, record: PolicyRecord) -> None:
        """Hash the stored policy.pt and manifest against the registry; ApprovalError if changed."""
        d = record.artifact_dir
        if d is None:
            raise ApprovalError("the random policy has no artifact; run it with --random")
        ppath = d / POLICY_FILE
        if not ppath.is_file():
            raise ApprovalError(
                f"policy {record.id}: {ppath} is missing from the artifact store; register it again"
            )
        actual = sha256_file(ppath)
        if actual != record.sha256:
            raise ApprovalError(
                f"policy {record.id}: file hash {actual[:12]} differs from the registry's "
                f"{record.sha256[:12]} "
                f"({ppath} was modified); do not run it, register a fresh export"
            )
        try:
            digest = manifest_digest(load_manifest(d))
        except ArtifactError as exc:
            raise ApprovalError(f"policy {record.id}: stored manifest unreadable ({exc})") from None
        if digest != record.manifest_digest:
            raise ApprovalError(
                f"policy {record.id}: {d / MANIFEST_FILE} differs from the registered manifest; "
                "do not run it, register a fresh export"
            )
