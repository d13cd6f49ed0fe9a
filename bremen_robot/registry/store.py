"""The policy registry: content-addressed artifact store, states, approvals, deployments, audit.

Layout of a workspace (default ``$BREMEN_WORKSPACE`` or ``./bremen_ws``)::

    registry.sqlite              the database (or wherever --db / $BREMEN_REGISTRY_URL points)
    artifacts/<sha256>/          policy.pt + manifest.json, read-only, never overwritten

States (:class:`~bremen_robot.registry.states.PolicyState`): ``candidate -> approved | rejected``,
``approved -> deployed | rejected | retired``, ``deployed -> retired``, all in the one table
:data:`~bremen_robot.registry.states.TRANSITIONS`. Every change of state (:mod:`.lifecycle`) is
one ``BEGIN IMMEDIATE`` transaction together with its append-only audit row, so concurrent
writers serialize and a killed process leaves either the whole change or none of it.

The deployment count is the number of rows in ``deployments``: each policy that collects data
gets the next number once (marking a deployed policy deployed again returns its number). The
uniform-random first-deployment policy is a pseudo-policy with id ``random`` and kind
``random``, recorded as deployment 1 without an approval.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any

from bremen_robot.errors import ArtifactError
from bremen_robot.fsutil import fsync_dir
from bremen_robot.policy.manifest import (
    MANIFEST_FILE,
    POLICY_FILE,
    PolicyManifest,
    checked_artifact,
    load_manifest,
    manifest_digest,
    sha256_file,
)
from bremen_robot.registry import db
from bremen_robot.registry.errors import ApprovalError, RegistryError
from bremen_robot.registry.guard import GuardedConnection
from bremen_robot.registry.jsonio import json_object, read_report, to_json
from bremen_robot.registry.lifecycle import StateChanges, _current_user, _now
from bremen_robot.registry.records import (
    RANDOM_POLICY_ID,
    SHORT_ID_LEN,
    Approval,
    AuditRow,
    PolicyRecord,
    short_id,
)
from bremen_robot.registry.states import PolicyState, check_move, policy_state

__all__ = [
    "DB_FILE",
    "DEFAULT_WORKSPACE",
    "MIN_PREFIX_LEN",
    "RANDOM_POLICY_ID",
    "REGISTRY_URL_ENV",
    "REPORT_FILE",
    "SHORT_ID_LEN",
    "STORE_DIR",
    "WORKSPACE_ENV",
    "Approval",
    "AuditRow",
    "PolicyRecord",
    "PolicyState",
    "Registry",
    "default_workspace",
    "locate",
    "read_report",
    "short_id",
]

WORKSPACE_ENV = "BREMEN_WORKSPACE"
REGISTRY_URL_ENV = "BREMEN_REGISTRY_URL"
DEFAULT_WORKSPACE = "bremen_ws"
DB_FILE = "registry.sqlite"
STORE_DIR = "artifacts"
REPORT_FILE = "report.json"
MIN_PREFIX_LEN = 4

_HEX_RE = re.compile(r"^[0-9a-f]+$")


def default_workspace() -> Path:
    """``$BREMEN_WORKSPACE`` or ``./bremen_ws``."""
    env = os.environ.get(WORKSPACE_ENV)
    return Path(env).expanduser() if env else Path(DEFAULT_WORKSPACE)


def check_workspace(ws: Path) -> Path:
    """``ws``, refused when it is a file: every path inside it would then be reported missing."""
    if ws.exists() and not ws.is_dir():
        raise RegistryError(f"workspace '{ws}' is a file, not a folder; pass the campaign's workspace folder")
    return ws


def locate(workspace: Path | None, url: str | None) -> tuple[Path, Path]:
    """``(workspace, database file)`` from the arguments, ``$BREMEN_REGISTRY_URL`` and the defaults."""
    # every command that opens a workspace's registry comes here, so a file given as the workspace
    # is named as such once, not as "no registry database at '<file>/registry.sqlite'"
    ws = check_workspace(Path(workspace).expanduser() if workspace is not None else default_workspace())
    url = url if url is not None else os.environ.get(REGISTRY_URL_ENV) or None
    return ws, db.parse_url(url) if url else ws / DB_FILE


def _campaign_workspaces_hint() -> str:
    """Name the campaign workspaces under ./runs: 'bremen campaign' keeps its registry in
    runs/<name> while the other commands default to ./bremen_ws, so a first 'bremen policies'
    after a campaign looked in the wrong place without saying where to look."""
    found = sorted(p.parent for p in Path("runs").glob(f"*/{DB_FILE}"))
    if not found:
        return ""
    listed = ", ".join(str(p) for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    return f"campaign workspaces here: {listed} (pass --workspace {found[0]}); or "


class Registry(StateChanges):
    """Open with :meth:`Registry.open`; usable as a context manager (closes the connection).

    Lookup and registration are here; approve, reject, retire, mark_deployed and
    record_random_deployment come from :class:`~bremen_robot.registry.lifecycle.StateChanges`.
    """

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
            defaulted = workspace is None and url is None
            defaulted = (
                defaulted and not os.environ.get(REGISTRY_URL_ENV) and not os.environ.get(WORKSPACE_ENV)
            )
            raise RegistryError(
                f"no registry database at '{db_path}'; "
                + (_campaign_workspaces_hint() if defaulted else "")
                + "register a policy first or pass --workspace / --db"
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
        rows = self._conn.query(
            "SELECT sha256 FROM policies WHERE substr(sha256, 1, ?) = ? ORDER BY sha256 LIMIT 11",
            (len(key), key),
        ).fetchall()
        if not rows:
            raise RegistryError(
                f"no policy with id '{id_or_prefix}' in {self.db_path}; see 'bremen policies'"
            )
        if len(rows) > 1:
            shown = ", ".join(r["sha256"][: max(SHORT_ID_LEN, len(key) + 4)] for r in rows[:10])
            more = " and more" if len(rows) > 10 else ""
            raise RegistryError(
                f"policy id '{id_or_prefix}' is ambiguous: it matches {shown}{more}; type more characters"
            )
        return str(rows[0]["sha256"])

    def get(self, id_or_prefix: str) -> PolicyRecord:
        """The policy with this id or unique prefix (clear errors for unknown and ambiguous ids)."""
        return self._record(self.resolve(id_or_prefix))

    def policies(self) -> list[PolicyRecord]:
        """All policies, oldest registration first."""
        rows = self._conn.query("SELECT sha256 FROM policies ORDER BY registered_at, sha256").fetchall()
        return [self._record(r["sha256"]) for r in rows]

    def deployment_count(self) -> int:
        """Number of distinct policies that collected data (the quantity BREMEN minimizes)."""
        return int(self._conn.query("SELECT COUNT(*) AS n FROM deployments").fetchone()["n"])

    def audit(self, id: str | None = None) -> list[AuditRow]:
        """The audit log, oldest first; of one policy when ``id`` is given."""
        sql = "SELECT seq, policy_sha256, at, actor, from_state, to_state, note FROM audit"
        args: tuple[Any, ...] = ()
        if id is not None:
            sql += " WHERE policy_sha256 = ?"
            args = (self.resolve(id),)
        rows = self._conn.query(sql + " ORDER BY seq", args).fetchall()
        return [
            AuditRow(
                seq=r["seq"],
                policy_id=short_id(r["policy_sha256"]),
                sha256=r["policy_sha256"],
                at=r["at"],
                actor=r["actor"],
                from_state=r["from_state"],
                to_state=r["to_state"],
                note=r["note"],
            )
            for r in rows
        ]

    def artifact_path(self, sha256: str) -> Path:
        """Store folder of an artifact (``<workspace>/artifacts/<sha256>``)."""
        return self.store_dir / sha256

    def _record(self, sha: str) -> PolicyRecord:
        row = self._conn.query(
            "SELECT sha256, state, kind, robot, task, created_at, registered_at, manifest_digest,"
            " manifest_json, lineage_json, report_json FROM policies WHERE sha256 = ?",
            (sha,),
        ).fetchone()
        if row is None:
            raise RegistryError(
                f"no policy with id '{short_id(sha)}' in {self.db_path}; see 'bremen policies'"
            )
        arow = self._conn.query(
            "SELECT operator, approved_at, note, signature, payload, key_fingerprint"
            " FROM approvals WHERE policy_sha256 = ?",
            (sha,),
        ).fetchone()
        deps = [
            int(r["number"])
            for r in self._conn.query(
                "SELECT number FROM deployments WHERE policy_sha256 = ? ORDER BY number", (sha,)
            )
        ]
        approval = None
        if arow is not None:
            approval = Approval(
                operator=arow["operator"],
                time=arow["approved_at"],
                note=arow["note"],
                signature=arow["signature"],
                payload=arow["payload"],
                key_fingerprint=arow["key_fingerprint"],
            )
        sha = row["sha256"]
        return PolicyRecord(
            id=short_id(sha),
            sha256=sha,
            state=policy_state(row["state"], f"registry '{self.db_path}', policy {short_id(sha)}"),
            kind=row["kind"],
            robot=row["robot"],
            task=row["task"],
            created_at=row["created_at"],
            registered_at=row["registered_at"],
            manifest_digest=row["manifest_digest"],
            manifest=json_object(row["manifest_json"], "manifest_json", sha, self.db_path),
            lineage=json_object(row["lineage_json"], "lineage_json", sha, self.db_path),
            report=json_object(row["report_json"], "report_json", sha, self.db_path),
            approval=approval,
            deployments=deps,
            artifact_dir=None if sha == RANDOM_POLICY_ID else self.artifact_path(sha),
        )

    # ------------------------------------------------------------------ register
    def register(
        self,
        artifact_dir: Path,
        report: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
        load: bool = True,
    ) -> PolicyRecord:
        """Copy an exported artifact into the store and record it as a ``candidate``.

        ``report`` defaults to ``report.json`` in ``artifact_dir`` when present. ``lineage``
        may give ``parent`` (a policy id or ``random``), ``deployment`` (number of the
        deployment whose data trained it) and ``data_digests`` (default: the manifest's).
        Registering a sha256 that is already registered is a no-op returning the existing
        record (its report and lineage are kept as first written).

        ``load``: load the TorchScript once (torch) and refuse a file no robot could load, before
        anyone reviews it. A robot node registering an already approved policy passes False: its
        policy runner loads and verifies the same bytes moments later, before it moves anything.
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
        if load:
            with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not the user's concern
                warnings.simplefilter("ignore", DeprecationWarning)
                from bremen_robot.policy.artifact import load_artifact  # torch: only here

                load_artifact(src, verify=True)
        stored_manifest = self._store_artifact(src, sha, manifest)
        digest = manifest_digest(stored_manifest)
        now = _now()
        who = actor or _current_user()
        with db.transaction(self._conn):
            if not self._exists(sha):  # another process may have registered it meanwhile
                check_move(None, PolicyState.CANDIDATE)  # before the INSERT writes the state
                self._conn.execute(
                    "INSERT INTO policies (sha256, state, kind, robot, task, created_at, registered_at,"
                    " manifest_digest, manifest_json, report_json, lineage_json)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        sha,
                        PolicyState.CANDIDATE.value,
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
                note = f"registered from {src.resolve()}"
                self._change_state(sha, None, PolicyState.CANDIDATE, who, now, note)
        return self._record(sha)

    def _exists(self, sha: str) -> bool:
        return self._conn.execute("SELECT 1 FROM policies WHERE sha256 = ?", (sha,)).fetchone() is not None

    def _normalize_lineage(self, lineage: dict[str, Any] | None, manifest: PolicyManifest) -> dict[str, Any]:
        if lineage is not None and not isinstance(lineage, dict):
            raise RegistryError(f"lineage must be a mapping, got {type(lineage).__name__}")
        lin = dict(lineage or {})
        digests = lin.get("data_digests", list(manifest.data_digests))
        if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
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
