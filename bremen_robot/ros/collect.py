"""``bremen collect``: run the collect graph without a ROS install (DESIGN.md §3 "Launch").

Builds the node specs with :func:`graph.collect_specs` (the launch file calls the same), runs
each node as its own process over real DDS, watches ``bremen/episode`` from an in-process
rclpy node for progress, and stops the graph when the budget is used up, on Ctrl-C, or when
a node dies. The processes up, it configures and activates ``policy_runner``, a lifecycle node
(:mod:`bremen_robot.ros.lifecycle_client`), which stops first and exits last: ``deactivate``
ends the episode (``incomplete``), sends the safe command and keeps sending it for ``stop_grace_s``
(:mod:`bremen_robot.ros.safe_stop`); once that answered (or, without an answer, SIGINT and its
``halt`` event), ``sim_bridge`` stops, then the logger, which closes the bag, and then the
runner is cleaned up, shut down and waited for.
The summary reports what the bag holds (its episode records), not only the events this
process happened to receive. Children die with this process (``PR_SET_PDEATHSIG``: SIGTERM,
which the runner handles like SIGINT) and are killed if they ignore SIGINT, so no process
outlives a run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bremen_robot.errors import ConfigError
from bremen_robot.robot_config import load_robot_config
from bremen_robot.ros import apply_ros_env, require_rclpy
from bremen_robot.ros import topics as T
from bremen_robot.ros.bag_listing import await_stored, listed_episodes
from bremen_robot.ros.bagfile import METADATA, recover_bag
from bremen_robot.ros.collect_events import (  # re-exported: callers and tests import them here
    CollectError,
    CollectResult,
    ResetFailedError,
    _EventWatch,
    await_logger_recording,
    logger_catch_up_due,
    logger_recording_due,
    resets_logged,
)
from bremen_robot.ros.graph import (
    RANDOM_POLICY,
    NodeSpec,
    ProcessSpec,
    collect_specs,
    effective_config,
    process_specs,
)
from bremen_robot.ros.lifecycle_client import LifecycleClient
from bremen_robot.ros.process_graph import Graph
from bremen_robot.ros.stop_signals import StopInProgress, stop_on_signals
from bremen_robot.workspace_lock import folder_lock, has_content

BRING_UP_TIMEOUT_S = 60.0  # per transition: process start-up and policy loading, on a loaded machine
LOGGER_RECORDING_S = 60.0  # realtime simulation: the logger's first state, on a loaded machine
LOGGER_CATCH_UP_S = 20.0  # a finished run: how long the logger may take to list every episode
# An interrupted run (Ctrl-C): long enough for the logger to receive the runner's last record (the
# interrupted episode's steps and return), which it keeps when it closes the bag; not the whole
# tail drain, which in lockstep simulation never ends on its own (no new state after a Ctrl-C) and
# would hold every Ctrl-C for segment_drain_max_s
LOGGER_CATCH_UP_INTERRUPTED_S = 2.0


class CollectHooks(Protocol):
    """A seam for tests that inject faults into a run (tests/ros/collect_faults.py); a normal run
    passes none. Called from the loop that waits for the run to finish."""

    def on_poll(self, graph: Graph, result: CollectResult, done_steps: int) -> None:
        """Once per turn of the wait loop, with the steps reported so far."""

    def exit_expected(self, graph: Graph, name: str) -> bool:
        """Whether node ``name``'s exit is the hook's doing: the run then ends as if finished
        (and the bag is recovered as after any logger crash) instead of failing."""
        return False


def collect(
    config: str | Path,
    *,
    policy: str | None = None,
    random: bool = False,
    sim: str | None = None,
    episodes: int = 0,
    steps: int = 0,
    out: str | Path | None = None,
    workspace: str | Path | None = None,
    timeout_s: float = 0.0,
    progress: bool | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    hooks: CollectHooks | None = None,
    dry_run: bool = False,
    shadow: str | None = None,
    stop_on_estop: bool = False,
) -> CollectResult:
    """Run one deployment's collection and return what happened (see module docstring).

    ``hooks``: fault injection for tests only (:class:`CollectHooks`). ``shadow``: a registered
    candidate that runs beside the acting policy, publishing only shadow topics; its summary is
    recorded in the registry as a shadow run, not a deployment (docs/ros.md "Shadow mode").
    ``stop_on_estop``: end the run in order when ``bremen/estop`` latches (``result.estop``)
    instead of waiting for an operator's ``reset_estop`` (a fleet robot: docs/cluster.md).
    """
    cfg, bag, specs, processes = _plan(config, policy, random, sim, episodes, steps, out, workspace, shadow)
    result = CollectResult(
        bag=bag, specs=specs, processes=processes, registry=_registry_note(cfg.workspace, bool(workspace))
    )
    if dry_run:
        return result
    # One writer per bag folder, also for library callers (`bremen collect` holds it already).
    with folder_lock(bag, "output folder"):
        if has_content(bag):  # another writer may have filled it since _plan looked
            raise ConfigError(
                f"--out {bag} exists and is not empty; bags are never overwritten, pick a new folder"
            )
        return _collect_locked(cfg, bag, result, progress, timeout_s, on_event, hooks, shadow, stop_on_estop)


def _collect_locked(
    cfg: Any,
    bag: Path,
    result: CollectResult,
    progress: bool | None,
    timeout_s: float,
    on_event: Callable[[dict[str, Any]], None] | None,
    hooks: CollectHooks | None,
    shadow: str | None,
    stop_on_estop: bool = False,
) -> CollectResult:
    apply_ros_env()
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    rclpy = require_rclpy()
    bag.mkdir(parents=True, exist_ok=True)
    graph = Graph(result.processes, bag, env)
    show = sys.stderr.isatty() if progress is None else progress
    watch = _EventWatch(result, on_event, stop_on_estop)
    try:
        # Ctrl-C and SIGTERM stop in order, even if SIGINT came in ignored
        with stop_on_signals() as stopping:
            _run(rclpy, graph, cfg, watch, show, timeout_s, hooks, stopping)
    except BaseException:
        # a logger that died on its own fails the run ("node trajectory_logger exited ..."): its
        # open episode must still be marked incomplete; the run's own error is the one reported
        if _logger_died(result):
            with contextlib.suppress(Exception):
                recover_bag(bag)
        raise
    if _logger_died(result):
        result.logger_crashed = True
        if (bag / METADATA).is_file():  # a logger that failed at its start wrote no bag to recover
            recover_bag(bag)
    if cfg.log_topics:
        _report_bag(result)
        if shadow:
            from bremen_robot.registry.shadow_runs import record_from_bag

            result.shadow = record_from_bag(cfg.workspace, shadow, bag)
    return result


def _logger_died(result: CollectResult) -> bool:
    return result.exit_codes.get("trajectory_logger") not in (0, None) or result.logger_crashed


def _plan(
    config: str | Path,
    policy: str | None,
    random: bool,
    sim: str | None,
    episodes: int,
    steps: int,
    out: str | Path | None,
    workspace: str | Path | None,
    shadow: str | None = None,
) -> tuple[Any, Path, list[NodeSpec], list[ProcessSpec]]:
    """Check the request (one policy, a budget, an approved policy, a new bag folder) and build
    the node and process specs: (effective config, bag folder, node specs, process specs)."""
    if bool(policy) == bool(random):
        raise ConfigError("pass exactly one of --policy ID_OR_PATH or --random")
    pol = RANDOM_POLICY if random else str(policy)
    cfg = effective_config(config, sim=sim, episodes=episodes, steps=steps, workspace=workspace or "")
    if not (cfg.max_episodes or cfg.max_steps):
        raise ConfigError(
            "no budget: pass --episodes N or --steps N (or set max_episodes/max_steps in the config)"
        )
    robot = load_robot_config(cfg.robot)
    _check_limits(robot)
    if not random:
        _check_approval(pol, robot, cfg.workspace)
    if shadow:
        from bremen_robot.registry.shadow_runs import check_shadow_request

        check_shadow_request(shadow, pol, robot, cfg.workspace)
    bag = Path(out) if out else cfg.out_dir / time.strftime("%Y%m%dT%H%M%S")
    if has_content(bag):  # `bremen collect` holds the folder's lock file in it
        raise ConfigError(
            f"--out {bag} exists and is not empty; bags are never overwritten, pick a new folder"
        )
    specs = collect_specs(
        config,
        policy=pol,
        sim=sim,
        episodes=episodes,
        steps=steps,
        out=bag,
        workspace=workspace or "",
        shadow=shadow or "",
    )
    return cfg, bag, specs, process_specs(cfg, specs)


def _check_limits(robot: Any) -> None:
    """The robot's limits file, as policy_runner loads it at configure: refused here, before the
    bag folder is made (a failed run left one behind) and in ``--dry-run`` (it printed a plan)."""
    import safety

    if robot.safety is None:
        raise ConfigError(
            f"robot config {robot.source}: safety: no limits file; add safety: "
            "../safety/<robot>.yaml (docs/safety.md) and check it with 'bremen safety check'"
        )
    from bremen_robot.limits_fit import degrees_problem, ood_problem, unit_problem

    try:
        limits = safety.load_limits(robot.safety, joint_names=list(robot.joints))
    except safety.SafetyConfigError as exc:
        raise ConfigError(str(exc)) from None
    why = (
        degrees_problem(limits, robot.safety)
        or ood_problem(limits, robot.safety)
        or unit_problem(limits, robot.safety, robot.sim_model)
    )
    if why is not None:
        raise ConfigError(why)


def _run(
    rclpy: Any,
    graph: Graph,
    cfg: Any,
    watch: _EventWatch,
    show: bool,
    timeout_s: float,
    hooks: CollectHooks | None,
    stopping: StopInProgress | None = None,
) -> None:
    """Start the graph, follow its events until the budget is used up (or Ctrl-C, a dead node,
    the timeout), and stop it in order; the graph's processes never outlive this call.
    ``stopping.begin()`` is called before each stop, so a signal then cannot cut it short."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from std_msgs.msg import Bool, String

    ctx = rclpy.Context()
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = rclpy.create_node("bremen_collect", context=ctx)
        node.create_subscription(String, T.EPISODE, watch.handle, T.qos("episode"))
        if watch.on_event is not None or watch.stop_on_estop:
            node.create_subscription(Bool, T.ESTOP, watch.handle_estop, T.qos("latched"))
        node.create_subscription(String, T.RESET, watch.handle_reset, T.qos("episode"))
        wait_for_logger = logger_recording_due(graph, cfg.mode, cfg.log_topics)
        if wait_for_logger:  # transient local: the event may have come before this node
            node.create_subscription(String, T.EPISODE, watch.handle_logger, T.qos("episode"))
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)

        def alive(name: str = "policy_runner") -> Callable[[], bool]:
            return lambda: name in graph.procs and graph.procs[name].poll() is None

        def spin(timeout: float) -> None:
            ex.spin_once(timeout_sec=timeout)

        lifecycle = LifecycleClient(node, spin, alive=alive())
        # every runner node is a lifecycle node (a shadow runner too); the acting one comes up last
        runners = [n.name for p in graph.processes for n in p.nodes if n.executable == "policy_runner"]
        clients = [LifecycleClient(node, spin, n, alive(n)) for n in runners if n != "policy_runner"]

        def halted(timeout: float) -> bool:
            end = time.monotonic() + timeout
            runner = graph.procs.get("policy_runner")
            while not watch.halted and time.monotonic() < end and runner and runner.poll() is None:
                ex.spin_once(timeout_sec=0.02)
            return watch.halted

        def logger_recording() -> None:
            await_logger_recording(watch, spin, alive("trajectory_logger"), LOGGER_RECORDING_S)

        graph.start()
        try:
            for client in clients:
                client.bring_up(BRING_UP_TIMEOUT_S)  # a runner that died first: _wait says why
            lifecycle.bring_up(BRING_UP_TIMEOUT_S, logger_recording if wait_for_logger else None)
            _wait(ex, graph, cfg, watch, show, timeout_s, hooks)
        except KeyboardInterrupt:
            watch.result.interrupted = True
        finally:
            if stopping is not None:
                stopping.begin()

            def caught_up() -> None:  # runner halted, its publishers still up for DDS's resends
                logger = alive("trajectory_logger")
                if logger_catch_up_due(watch.done, watch.halted, logger(), T.EPISODE in cfg.log_topics):
                    bag, n = watch.result.bag, len(watch.result.episodes)
                    limit = LOGGER_CATCH_UP_S if watch.done else LOGGER_CATCH_UP_INTERRUPTED_S
                    await_stored(bag, n, limit, writer_alive=logger, with_reset=resets_logged(graph))

            watch.result.exit_codes = graph.stop_all(halted, cfg.stop_grace_s, lifecycle, caught_up)
            watch.result.exit_failures = graph.exit_failures()
            # events the runner sent while shutting down (an interrupted episode)
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                ex.spin_once(timeout_sec=0.05)
    finally:
        if stopping is not None:
            stopping.begin()
        graph.stop_all()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def _wait(
    ex: Any,
    graph: Graph,
    cfg: Any,
    watch: _EventWatch,
    show: bool,
    timeout_s: float,
    hooks: CollectHooks | None,
) -> None:
    """Spin until the runner reports the budget used up; CollectError if a node dies (unless
    ``hooks`` caused it) or the run passes ``timeout_s``."""
    unit = "steps" if cfg.max_steps else "episodes"
    bar = _progress(show, cfg.max_steps or cfg.max_episodes, unit)
    started = time.monotonic()
    try:
        while not watch.done:
            ex.spin_once(timeout_sec=0.1)
            done_steps = watch.done_steps()
            if bar is not None:
                bar[0].update(bar[1], completed=done_steps if unit == "steps" else len(watch.result.episodes))
            if hooks is not None:
                hooks.on_poll(graph, watch.result, done_steps)
            if watch.reset_failure:
                raise ResetFailedError(
                    f"{watch.reset_failure}; bag {graph.workdir} keeps the completed episodes"
                )
            dead = graph.dead()
            if dead:
                name = dead[0]
                if hooks is not None and hooks.exit_expected(graph, name):
                    return
                raise CollectError(
                    f"{graph.process_label(name)} exited with code {graph.procs[name].returncode}: "
                    f"{graph.tail(name)}"
                )
            if timeout_s and time.monotonic() - started > timeout_s:
                raise CollectError(
                    f"collection did not finish within {timeout_s:g} s; see {graph.workdir}/logs"
                )
    finally:
        if bar is not None:
            bar[0].stop()


def _report_bag(result: CollectResult) -> None:
    """The episodes as the bag lists them (item: a Ctrl-C can land while this process handles an
    event, and events can be missed; the bag is what was collected)."""
    listed = listed_episodes(result.bag)
    seen = {e.get("id"): e for e in result.episodes}
    episodes = []
    for rec in listed:
        if not isinstance(rec, dict) or rec.get("status") == "open":
            continue
        evt = dict(seen.get(rec.get("id"), {}))
        evt.update({k: v for k, v in rec.items() if v is not None and k != "status"})
        evt["complete"] = rec.get("status") == "complete"
        evt.setdefault("steps", 0)
        evt.setdefault("interventions", 0)
        episodes.append(evt)
        if result.deployment is None and isinstance(rec.get("deployment"), int):
            result.deployment = rec["deployment"]
        if not result.policy_sha256 and rec.get("policy_sha256"):
            result.policy_sha256 = str(rec["policy_sha256"])
    result.episodes = episodes


def _progress(show: bool, total: int, unit: str) -> Any:
    if not show:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn(f"collecting {unit}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )
    bar.start()
    return bar, bar.add_task("collect", total=total)


def _registry_note(workspace: Path | None, given: bool) -> str:
    """The registry the runner records into (it opens the same one: same environment and folder),
    and where that choice came from: without --workspace a ./bremen_ws appears unannounced."""
    from bremen_robot.registry.store import WORKSPACE_ENV, locate

    ws, database = locate(workspace, None)
    if workspace is not None:
        why = "" if given else ", from the collect config"
    elif os.environ.get(WORKSPACE_ENV):
        why = f", from ${WORKSPACE_ENV}"
    else:
        why = ", the default; pass --workspace W to record elsewhere"
    return f"{database.absolute()} (workspace {ws.absolute()}{why})"


def _check_approval(policy: str, robot: Any, workspace: Path | None) -> None:
    """Refuse an unapproved policy before anything starts. Every check but loading the TorchScript:
    the runner checks again and loads it, and torch here would cost seconds of each start-up."""
    from bremen_robot.registry import Registry, check_for_deployment, default_workspace

    # read-only: a mistyped workspace must not get a new, empty registry from a check
    reg = Registry.open(Path(workspace) if workspace else default_workspace(), readonly=True)
    try:
        check_for_deployment(policy, robot, reg)
    finally:
        reg.close()
