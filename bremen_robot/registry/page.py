"""The review page: one self-contained HTML file (``<workspace>/reviews/<id>/review.html``).

Jinja2 with autoescape on, so anything from the registry, the report or the workspace (notes,
operator names, config strings) is shown as text, never run. Images are PNG data URIs and the
video a WebM data URI: the file opens from disk, with no network. The page never signs
anything; it shows the commands that do.

:func:`render_page` turns what :func:`collect_page_data` gathered into HTML; both are separate
so another view (the live console) can render the same page for a record it already holds.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bremen_robot.registry.records import PolicyRecord
from bremen_robot.registry.review import holdout_per_member, selection_lines
from bremen_robot.registry.verdict import Verdict, as_dict
from bremen_robot.registry.video import Video

PAGE_FILE = "review.html"

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>review {{ rec.id }}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 70em; padding: 0 1em;
 color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em;
text-align: left; vertical-align: top; } th { background: #f3f3f3; }
.flags li { color: #a00; font-weight: 600; } .flags .meaning { font-weight: normal; }
.ok { color: #070; font-weight: 600; }
.note { color: #555; font-size: .92em; } code, pre { background: #f6f6f6; padding: .1em .3em; }
pre { padding: .6em; overflow-x: auto; white-space: pre-wrap; } img { max-width: 100%; }
</style></head>
<body>
<h1>Review of policy {{ rec.id }} ({{ rec.state }})</h1>
<p class="note">Written {{ written }} by <code>bremen review</code> from the registry and the workspace's
recorded evaluations. This page signs nothing: approval is the signed command at the bottom.</p>

<h2 id="verdict">Verdict: candidate vs the policy deployed now</h2>
<table id="verdict-table"><tr><th></th><th>candidate {{ v.candidate_id }}</th>
<th>deployed {{ v.deployed_id or "(none yet)" }}</th></tr>
{% for r in v.rows %}<tr><th>{{ r.label }}</th><td>{{ r.candidate }}</td><td>{{ r.deployed }}</td></tr>
{% endfor %}</table>
{% if v.flags %}<ul class="flags" id="flags">{% for f in v.flags %}
<li data-code="{{ f.code }}">RED FLAG: {{ f.text }}{% if f.meaning %}<br><span class="note meaning">means:
{{ f.meaning }}</span>{% endif %}</li>{% endfor %}</ul>
<p class="note" id="advisory">{{ v.advisory }}</p>
{% else %}<p class="ok" id="flags">No red flag on the recorded evidence.</p>{% endif %}
<ul class="note">{% for n in v.notes %}<li>{{ n }}</li>{% endfor %}</ul>
{% if selection %}<pre id="selection">{{ selection }}</pre>{% endif %}

<h2 id="video">The candidate in simulation{% if has_deployed %}, the deployed policy beside it{% endif %}</h2>
{% if video_uri %}<p class="note">{{ video_caption }}</p>
<video id="policy-video" src="{{ video_uri }}" controls muted loop playsinline preload="auto"></video>
{% else %}<p id="no-video">{{ video_reason }}</p>{% endif %}

<h2 id="curves">Training curves</h2>
{% for name, uri in images %}<figure><img src="{{ uri }}" alt="{{ name }}"><figcaption class="note">{{ name }}
</figcaption></figure>{% else %}<p>{{ plots_reason }}</p>{% endfor %}

<h2 id="members">Holdout error per ensemble member</h2>
{% if members %}<table><tr>{% for m in members %}<th>#{{ loop.index0 }}</th>{% endfor %}</tr>
<tr>{% for m in members %}<td>{{ "%.4g"|format(m) }}</td>{% endfor %}</tr></table>
<p class="note">A member far worse than the others is a warning sign.</p>{% else %}<p>not run</p>{% endif %}

<h2 id="sim2real">Sim2real</h2>
{% if s2r_rows %}<table><tr><th>condition</th><th>engine</th><th>randomized</th><th>episodes</th>
<th>return</th><th>success</th><th>interventions / episode</th></tr>
{% for c in s2r_rows %}<tr><td>{{ c.label }}</td><td>{{ c.backend }}</td><td>{{ c.randomized }}</td>
<td>{{ c.episodes }}</td><td>{{ c.ret }}</td><td>{{ c.success }}</td><td>{{ c.interventions }}</td></tr>
{% endfor %}</table>{% if s2r_ratio %}<p>transfer ratio {{ s2r_ratio }}</p>{% endif %}
{% else %}<p>not run (the campaign runs it with <code>evaluation.sim2real: true</code>)</p>{% endif %}

<h2 id="lineage">Lineage</h2>
<table>
<tr><th>parent</th><td>{{ lineage.parent or "-" }}</td></tr>
<tr><th>trained on data of deployment</th><td>{{ lineage.deployment or "-" }}</td></tr>
<tr><th>data digests</th><td>{% for d in lineage.digests %}<code>{{ d }}</code><br>
{% else %}none recorded{% endfor %}</td></tr>
<tr><th>its own deployments</th><td>{{ deployments or "none" }}</td></tr>
<tr><th>robot / task</th><td>{{ rec.robot }} / {{ rec.task }}</td></tr>
</table>

<h2 id="sessions">Collection sessions (one per robot of a fleet deployment)</h2>
{% if sessions %}<table id="sessions-table"><tr><th>round</th><th>robot</th><th>node</th><th>samples</th>
<th>episodes</th><th>interventions</th></tr>
{% for s in sessions %}<tr><td>{{ s.round }}</td><td>{{ s.robot }}</td><td>{{ s.node }}</td>
<td>{{ s.samples }}</td><td>{{ s.episodes }}</td><td>{{ s.interventions }}</td></tr>
{% endfor %}</table>{% else %}<p id="no-sessions">none recorded (sessions are recorded when a fleet collects
with this policy: docs/cluster.md)</p>{% endif %}

<h2 id="artifact">Artifact and signature</h2>
<table>
<tr><th>artifact sha256</th><td><code>{{ rec.sha256 }}</code></td></tr>
<tr><th>manifest digest</th><td><code>{{ rec.manifest_digest }}</code></td></tr>
<tr><th>signature</th><td id="signature">{{ signature }}</td></tr>
{% if rec.approval %}<tr><th>approved by</th>
<td id="approver">{{ rec.approval.operator }} at {{ rec.approval.time }}</td></tr>
<tr><th>approval note</th><td id="approval-note">{{ rec.approval.note }}</td></tr>{% endif %}
</table>

<h2 id="commands">Decide (in a terminal)</h2>
<pre id="approve-cmd">{{ approve_cmd }}</pre>
<pre id="reject-cmd">{{ reject_cmd }}</pre>
<p class="note" id="decide-note">Replace NAME with your operator name (<code>bremen operator init
NAME</code>). Approving signs with that operator's private key and is recorded in the audit log.
Rejecting needs no key: a rejection can only stop a policy, never run one, so the name given is
recorded in the audit log as typed, unverified. A campaign waiting for this candidate keeps its
training aside (<code>d&lt;k&gt;/train.rejected-N</code>, listed in <code>rejections.json</code>)
and trains another candidate with another seed (docs/registry.md, "Rejecting a candidate").</p>

<h2 id="report">The full report (as <code>bremen review</code> prints it)</h2>
<pre id="report-text">{{ text }}</pre>
</body></html>
"""


@dataclass
class PageData:
    """What the page shows besides the record and the verdict."""

    workspace: Path
    text: str  # the terminal review
    plots: list[Path] = field(default_factory=list)
    plots_reason: str = "no curves in the report"
    video: Video | None = None
    video_reason: str = ""
    deployed_label: str = ""
    sim2real: dict[str, Any] | None = None
    sessions: list[Any] = field(default_factory=list)  # registry.sessions.CollectionSession


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def commands(rec: PolicyRecord, workspace: Path) -> tuple[str, str]:
    """The exact approve / reject command lines (the workspace shell-quoted)."""
    ws = shlex.quote(str(workspace))
    return (
        f"bremen approve {rec.id} --operator NAME --note 'what you checked' --workspace {ws}",
        f"bremen reject {rec.id} --reason 'why' --operator NAME --workspace {ws}",
    )


DECIDE_NOTE = (
    "approving signs with NAME's private key; rejecting needs no key (a rejection can only stop a "
    "policy, never run one; the name is recorded as given) and a campaign waiting for this candidate "
    "trains another (docs/registry.md, 'Rejecting a candidate')"
)


def decide_lines(rec: PolicyRecord, workspace: Path) -> list[str]:
    """The page's commands for the terminal, for a policy still to decide on; ``--workspace``
    only where it is not the default, as every other command a message names."""
    from bremen_robot.registry.hints import bremen_command

    if rec.is_random or rec.state not in ("candidate", "approved"):
        return []
    lines = ["decide (NAME: your operator name, from 'bremen operator init NAME'):"]
    if rec.state == "candidate":
        lines.append(
            "  " + bremen_command(f"approve {rec.id} --operator NAME --note 'what you checked'", workspace)
        )
    lines.append("  " + bremen_command(f"reject {rec.id} --reason 'why' --operator NAME", workspace))
    return [*lines, DECIDE_NOTE]


def _pct(x: Any) -> str:
    return "-" if not isinstance(x, int | float) or isinstance(x, bool) else f"{100 * x:.0f} %"


def _sim2real_rows(s2r: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for c in (s2r or {}).get("conditions") or []:
        if not isinstance(c, dict):
            continue
        mean, std, ipe = c.get("return_mean"), c.get("return_std"), c.get("interventions_per_episode")
        rows.append(
            {
                "label": c.get("label", "?"),
                "backend": c.get("backend", "?"),
                "randomized": c.get("randomized", "?"),
                "episodes": c.get("episodes", "?"),
                "ret": f"{mean:.1f} ± {std:.1f}"
                if isinstance(mean, float) and isinstance(std, float)
                else "-",
                "success": _pct(c.get("success_rate")),
                "interventions": f"{ipe:.2f}" if isinstance(ipe, float) else "-",
            }
        )
    return rows


def render_page(rec: PolicyRecord, verdict: Verdict, data: PageData) -> str:
    """The page's HTML (a pure function of its inputs; nothing written)."""
    from jinja2 import Environment

    env = Environment(autoescape=True)
    members, _ = holdout_per_member(rec.report or {})
    approve_cmd, reject_cmd = commands(rec, data.workspace)
    lin = rec.lineage or {}
    video = data.video
    ratio = (data.sim2real or {}).get("transfer_ratio")
    return env.from_string(_TEMPLATE).render(
        rec=rec,
        v=as_dict(verdict),
        written=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        selection="\n".join(selection_lines(rec.report or {})),
        has_deployed=bool(data.deployed_label),
        video_uri=data_uri(video.data, "video/webm") if video is not None and video.data else "",
        video_caption=(
            f"Left: candidate {rec.id}"
            + (f"; right: deployed {data.deployed_label}" if data.deployed_label else "")
            + (f". One episode each, same start, {video.frames} frames at {video.fps:g} Hz." if video else "")
        ),
        video_reason=data.video_reason or (video.reason if video is not None else "no video"),
        images=[(p.stem.split("-", 1)[-1], data_uri(p.read_bytes(), "image/png")) for p in data.plots],
        plots_reason=data.plots_reason,
        members=members or [],
        s2r_rows=_sim2real_rows(data.sim2real),
        s2r_ratio=f"{ratio:.2f}" if isinstance(ratio, float) else "",
        lineage={
            "parent": lin.get("parent"),
            "deployment": lin.get("deployment"),
            "digests": [str(d) for d in lin.get("data_digests") or []],
        },
        deployments=", ".join(str(n) for n in rec.deployments),
        sessions=data.sessions,
        signature=verdict.signature,
        approve_cmd=approve_cmd,
        reject_cmd=reject_cmd,
        text=data.text,
    )


def write_page(rec: PolicyRecord, verdict: Verdict, data: PageData, out_dir: Path) -> Path:
    """Write ``out_dir/review.html`` atomically; returns its path."""
    from bremen_robot.fsutil import atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PAGE_FILE
    atomic_write_bytes(path, render_page(rec, verdict, data).encode("utf-8"))
    return path
