"""``bremen campaign``: the product's main job, a few deployments end to end."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "campaign",
        help="run a deployment campaign: collect (ROS 2 graph) -> train -> review/approve -> deploy, K times",
        description="Runs or resumes a campaign. State lives in the workspace and its registry, so the same "
        "command resumes after Ctrl-C or a crash without redoing finished work.",
    )
    p.add_argument(
        "--config", required=True, help="campaign preset (configs/campaigns/<name>.yaml) or YAML path"
    )
    p.add_argument(
        "--workspace", type=Path, default=None, help="workspace folder (default: runs/<campaign name>)"
    )
    p.add_argument(
        "--auto-approve",
        action="store_true",
        help="simulation only: approve each candidate with a local demo operator key",
    )
    p.add_argument(
        "--collector",
        choices=["graph", "direct"],
        default="graph",
        help="graph: the ROS 2 collect graph (default); direct: step the simulator without "
        "ROS or shield (benchmarks)",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="collect on the robot nodes of a running Ray cluster (HOST:PORT, or auto for the one "
        "started on this machine); the campaign's fleet names the robots (docs/cluster.md)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bremen_robot.campaign.config import load_campaign_config
    from bremen_robot.campaign.runner import Campaign
    from bremen_robot.campaign.workspace import Workspace
    from bremen_robot.progress import Reporter

    cfg = load_campaign_config(args.config)
    workspace = args.workspace or Path("runs") / cfg.name
    collect_fn = None
    if args.collector == "direct":
        from bremen_robot.campaign.direct import collect_direct

        collect_fn = collect_direct
    reporter = Reporter(enabled=False if args.quiet else None)
    if cfg.fleet and not args.cluster:
        from bremen_robot.errors import ConfigError

        raise ConfigError(
            f"{args.config}: fleet: {', '.join(cfg.fleet)} collect on a Ray cluster; pass --cluster ADDRESS "
            "(docs/cluster.md) or remove the fleet"
        )
    with Workspace(workspace).lock():
        if args.cluster:
            from bremen_robot.cluster.fleet import ClusterCampaign

            campaign: Campaign = ClusterCampaign(
                cfg, workspace, address=args.cluster, auto_approve=args.auto_approve, reporter=reporter
            )
        else:
            campaign = Campaign(
                cfg, workspace, auto_approve=args.auto_approve, collect_fn=collect_fn, reporter=reporter
            )
        summary = campaign.run()
    print(
        f"\ncampaign {cfg.name} ({summary['robot']}/{summary['task']}), deployment count "
        f"{summary['deployment_count']}, workspace {workspace}"
    )
    print(f"{'deployment':>10} {'samples':>9} {'policy':>14} {'eval return':>20} {'interventions':>14}")
    for r in summary["deployments"]:
        ret = f"{r['eval_return_mean']:.1f} ± {r['eval_return_std']:.1f}"
        success = f"  success {r['success_rate']:.0%}" if "success_rate" in r else ""
        shield = "not shielded" if r.get("interventions") is None else r["interventions"]
        print(
            f"{r['deployment']:>10} {r['samples']:>9} {r['policy_id']:>14} {ret:>20} {shield:>14}" + success
        )
    # the count is per joint and reason, so it can exceed the steps: say so where it is read
    print("(interventions: the shield's corrections while collecting, one per joint and reason)")
    f = summary["final_candidate"]
    print(
        f"final candidate {f['policy_id']} ({f['state']}): "
        f"{f['eval_return_mean']:.1f} ± {f['eval_return_std']:.1f}"
        + (f", success rate {f['success_rate']:.0%}" if "success_rate" in f else "")
    )
    print(f"summary: {workspace / 'summary.json'}, plot: {workspace / 'summary.png'}")
    return 0
