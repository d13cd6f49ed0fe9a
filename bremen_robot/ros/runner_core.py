"""What ``policy_runner`` does per control step, without rclpy (so it is unit-testable).

One step: joint states (+ base odometry) -> task observation (manifest joint order, via
``sim.observation.ObservationBuilder``) -> policy mean + exploration noise (or uniform random
actions) -> ``safety.SafetyShield`` -> the command to send. Alongside, it keeps the episode:
return and termination from the task's known functions, the time limit, intervention counts,
and the JSON events published on ``bremen/episode``.

Bad input never raises here: a NaN / wrong-length / unknown-joint observation, a missing
odometry, or a policy that throws all lead to the shield's safe command and an intervention,
once the episode has its first readable state. Before it (no episode running, or its first
state unreadable) nothing is filtered: lockstep answers with no command (the simulator waits, the
watchdog covers the gap) and realtime sends the safe command only with idle commands on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bremen_robot.ros.topics import make_tag, parse_command_id, parse_tag
from bremen_robot.tasks import Task

PolicyFn = Callable[[np.ndarray], np.ndarray]

STAMP_WENT_BACK = "stamp_went_back"
"""The stop reason of an episode cut because a state's stamp went back (a cut like a timeout)."""


@dataclass
class Episode:
    id: int
    started_ns: int
    running: bool
    ret: float = 0.0
    steps: int = 0
    interventions: int = 0
    first_stamp_ns: int = -1
    last_stamp_ns: int = -1
    reset_stamp_ns: int = -1
    extras: dict[str, float] = field(default_factory=dict)
    prev: tuple[np.ndarray, np.ndarray] | None = None
    # lockstep: every command sent in answer to ``prev``'s state, by sequence number; the next
    # state's echo names the one the simulator stepped with (sim_bridge, topics.make_tag)
    answers: dict[int, np.ndarray] = field(default_factory=dict)
    answered_stamp: int = -1  # the state ``answers`` answered


@dataclass
class StepOutput:
    """What to publish for one step. ``command`` None: publish nothing (lockstep, between episodes)."""

    command: np.ndarray | None
    raw_action: np.ndarray | None
    interventions: tuple[Any, ...]
    tag: str
    events: list[dict[str, Any]]
    safe: bool = False


class RunnerCore:
    """Policy + shield + episode bookkeeping for one robot (see module docstring)."""

    def __init__(
        self,
        *,
        task: Task,
        joint_order: Sequence[str],
        shield: Any,
        policy: PolicyFn | None,
        action_low: Sequence[float],
        action_high: Sequence[float],
        noise_sigma: float = 0.0,
        seed: int = 0,
        episode_steps: int = 0,
        lockstep: bool = False,
        wait_for_reset: bool = False,
        policy_sha256: str = "random",
        deployment: int = -1,
        max_episodes: int = 0,
        max_steps: int = 0,
        extras: dict[str, float] | None = None,
        idle_commands: bool = True,
        first_episode_id: int = 1,
    ) -> None:
        self.task = task
        self.joint_order = tuple(joint_order)
        self.shield = shield
        self.policy = policy
        self.low = np.asarray(action_low, dtype=np.float64)
        self.high = np.asarray(action_high, dtype=np.float64)
        self.noise_sigma = float(noise_sigma)
        self.rng = np.random.default_rng([int(seed), 0xB3E])
        self.episode_steps = int(episode_steps) or task.max_episode_steps
        self.lockstep = lockstep
        self.wait_for_reset = wait_for_reset
        self.policy_sha256 = policy_sha256
        self.deployment = int(deployment)
        self.max_episodes = int(max_episodes)
        self.max_steps = int(max_steps)
        self.default_extras = dict(extras or {})
        # realtime, between episodes: send the safe command every tick (True), or only on the
        # tick that ends an episode (False: a scripted reset commands the robot in between)
        self.idle_commands = idle_commands
        self.episode: Episode | None = None
        self.next_id = int(first_episode_id)  # unique within a bag across reconfigures
        self.episodes_done = 0
        self.total_steps = 0
        self.finished = False
        self._builders: dict[tuple[str, ...], Any] = {}
        self._needs_base: bool | None = None
        self.policy_errors = 0
        self._last_out: StepOutput | None = None
        self._last_stamp = -1
        self._last_shield_steps = -1  # the shield's step count when _last_out was made
        self._seq = 0  # the last command's sequence number (topics.make_tag)
        # the observation builder's module takes ~30 ms to import: pay it here, not on the
        # first control tick (it would be a missed tick at 500 Hz)
        import sim.observation  # noqa: F401

    def _tag(self, episode: int, stamp_ns: int) -> str:
        """A fresh tag: each command gets its own sequence number, so a command that answers the
        same state as another one (a watchdog's safe command after the policy's) is told apart."""
        self._seq += 1
        return make_tag(episode, stamp_ns, self._seq)

    # ------------------------------------------------------------------ observation
    def _builder(self, names: tuple[str, ...]) -> Any:
        b = self._builders.get(names)
        if b is None:
            from sim.observation import ObservationBuilder

            b = ObservationBuilder(self.task, names)  # raises TaskError for missing joints
            if len(self._builders) > 8:
                self._builders.clear()
            self._builders[names] = b
        return b

    @property
    def needs_base(self) -> bool:
        if self._needs_base is None:
            self._needs_base = any(n.split(".", 1)[1].startswith("root_") for n in self.task.obs_names)
        return self._needs_base

    def observe(
        self,
        names: tuple[str, ...],
        position: np.ndarray,
        velocity: np.ndarray,
        base: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> np.ndarray | None:
        """The task observation, or None when the joint states are unusable."""
        if len(position) != len(names) or len(velocity) != len(names):
            return None
        try:
            b = self._builder(names)
            extras = self.episode.extras if self.episode is not None and self.episode.extras else None
            extras = extras or self.default_extras or None
            if b.needs_base:
                if base is None:
                    return None
                obs = b(position, velocity, base[0], base[1], extras)
            else:
                obs = b(position, velocity, None, None, extras)
        except Exception:
            return None
        s = float(obs.sum())
        if s - s != 0.0:  # NaN or inf somewhere
            return None
        return obs

    # ------------------------------------------------------------------ episodes
    def can_start(self) -> tuple[bool, str]:
        if self.episode is not None:
            return False, f"episode {self.episode.id} is running; stop it first"
        if self.finished:
            return False, "the collection budget is used up"
        if getattr(self.shield.state, "estop_latched", False):
            return False, "e-stop is latched; call bremen/reset_estop first"
        return True, ""

    def start_episode(self, now_ns: int) -> dict[str, Any]:
        # between episodes the robot was sent safe commands, a reset motion or a simulator reset:
        # the first command is rate-limited from rest, not from the last episode's last command
        self.shield.forget_commands()
        ep = Episode(id=self.next_id, started_ns=now_ns, running=not self.wait_for_reset)
        self.next_id += 1
        self.episode = ep
        return {
            "event": "start",
            "id": ep.id,
            "policy_sha256": self.policy_sha256,
            "deployment": self.deployment,
            "task": self.task.name,
            "noise_sigma": self.noise_sigma,
            "episode_steps": self.episode_steps,
            "stamp_ns": now_ns,
            "source": "policy_runner",
        }

    def end_episode(
        self, reason: str, now_ns: int, complete: bool = True, detail: str = ""
    ) -> dict[str, Any] | None:
        """The ``stop`` event of the running episode (None when none runs); ``detail``, when given,
        says why in words (the event's ``detail``; the runner logs it as a warning)."""
        ep = self.episode
        if ep is None:
            return None
        self.episode = None
        self.episodes_done += 1
        self.total_steps += ep.steps
        if (self.max_episodes and self.episodes_done >= self.max_episodes) or (
            self.max_steps and self.total_steps >= self.max_steps
        ):
            self.finished = True
        stop = {
            "event": "stop",
            "id": ep.id,
            "policy_sha256": self.policy_sha256,
            "deployment": self.deployment,
            "reason": reason,
            "complete": bool(complete),
            "return": ep.ret,
            "steps": ep.steps,
            "interventions": ep.interventions,
            "first_obs_stamp_ns": ep.first_stamp_ns,
            "last_obs_stamp_ns": ep.last_stamp_ns,
            "extras": ep.extras,
            "stamp_ns": now_ns,
            "finished": self.finished,
            "source": "policy_runner",
        }
        if detail:
            stop["detail"] = detail
        return stop

    def on_sim_event(self, evt: dict[str, Any], now_ns: int) -> tuple[bool, list[dict[str, Any]]]:
        """Handle sim_bridge's ``reset``/``end``; returns (process the buffered state now?, events)."""
        ep = self.episode
        if ep is None or evt.get("id") != ep.id:
            return False, []
        if evt.get("event") == "reset" and not ep.running:
            ep.running = True
            ep.reset_stamp_ns = int(evt.get("stamp_ns", 0))
            ep.extras = {str(k): float(v) for k, v in (evt.get("extras") or {}).items()}
            return True, []
        if evt.get("event") == "end":
            final = evt.get("last_state_stamp_ns")
            if isinstance(final, int) and ep.first_stamp_ns >= 0 and final > ep.last_stamp_ns:
                # realtime: the end arrived before the control tick on the final state; the last
                # command's transition ends in that state (ingest pairs it by this stamp)
                ep.last_stamp_ns = final
                ep.steps += 1
            stop = self.end_episode(str(evt.get("reason", "sim_end")), now_ns)
            return False, [stop] if stop else []
        return False, []

    # ------------------------------------------------------------------ the step
    def _action(self, obs: np.ndarray) -> np.ndarray | None:
        if self.policy is None:
            return self.rng.uniform(self.low, self.high)
        try:
            a = np.asarray(self.policy(obs), dtype=np.float64).reshape(-1)
        except Exception:
            self.policy_errors += 1
            return None
        if self.noise_sigma > 0:
            a = a + self.noise_sigma * self.rng.standard_normal(a.shape[0])
        return a

    def step(
        self,
        names: tuple[str, ...],
        position: np.ndarray,
        velocity: np.ndarray,
        stamp_ns: int,
        arrival: float,
        now: float,
        now_ns: int,
        base: Any = None,
        echo: str = "",
    ) -> StepOutput:
        """One control step on the newest joint states (see module docstring). ``echo``: the
        state's ``header.frame_id``, in lockstep the tag of the command that stepped to it."""
        from safety import JointState

        shield = self.shield.state
        if (
            self.lockstep
            and stamp_ns == self._last_stamp
            and self._last_out is not None
            and shield.steps == self._last_shield_steps  # nothing sent since (a watchdog's stop)
            and not shield.estop_latched
        ):
            return replace(self._last_out, events=[])  # a re-sent state: answer it as before
        out = self._step(names, position, velocity, stamp_ns, arrival, now, now_ns, base, JointState, echo)
        if out.command is not None:
            self._last_stamp, self._last_out = stamp_ns, out
            self._last_shield_steps = self.shield.state.steps
        return out

    def _step(
        self,
        names: tuple[str, ...],
        position: np.ndarray,
        velocity: np.ndarray,
        stamp_ns: int,
        arrival: float,
        now: float,
        now_ns: int,
        base: Any,
        JointState: Any,
        echo: str = "",
    ) -> StepOutput:
        ep = self.episode
        events: list[dict[str, Any]] = []
        obs = self.observe(names, position, velocity, base)
        if ep is not None and ep.running and ep.first_stamp_ns >= 0 and stamp_ns < ep.last_stamp_ns:
            # the state's stamp went back (realtime: the wall clock stepped back). Transitions are
            # paired by stamp order, so none may span it: end the episode here, as a cut (its
            # transitions so far stay valid); this state belongs to no episode
            why = (
                f"the joint_states stamp went back by {(ep.last_stamp_ns - stamp_ns) / 1e9:.9f} s "
                f"(from {ep.last_stamp_ns} to {stamp_ns} ns; the clock stepped back?): episode {ep.id} "
                "cut there"
            )
            events.append(self.end_episode(STAMP_WENT_BACK, now_ns, detail=why))  # type: ignore[arg-type]
        elif ep is not None and ep.running and stamp_ns >= ep.reset_stamp_ns:
            if ep.first_stamp_ns < 0:
                if obs is not None:
                    ep.first_stamp_ns = ep.last_stamp_ns = stamp_ns
            elif stamp_ns != ep.last_stamp_ns:  # a new state: one transition (re-used states are not)
                if ep.prev is not None and obs is not None:
                    o, a = ep.prev
                    a = stepped_command(echo, ep.answers, a)
                    r = float(self.task.reward(o[None], a[None], obs[None])[0])
                    term = bool(self.task.terminated(o[None], a[None], obs[None])[0])
                    ep.ret += r
                else:
                    term = False
                ep.steps += 1
                ep.last_stamp_ns = stamp_ns
                reason = ""
                if term:
                    reason = "terminated"
                elif ep.steps >= self.episode_steps:
                    reason = "time_limit"
                elif self.max_steps and self.total_steps + ep.steps >= self.max_steps:
                    reason = "budget"
                if reason:
                    stop = self.end_episode(reason, now_ns)
                    events.append(stop)  # type: ignore[arg-type]
                    ep = None
        ep = self.episode
        if ep is None or not ep.running or stamp_ns < ep.reset_stamp_ns or ep.first_stamp_ns < 0:
            tag = self._tag(-1, stamp_ns)
            if self.lockstep or not (self.idle_commands or events):
                return StepOutput(None, None, (), tag, events)
            if self.shield.hold_is_a_guess():  # a position hold: at this state, not mid-range
                self.shield.note_measurement(JointState(names, position, velocity, arrival))
            return StepOutput(self.sent_outside_filter(), None, (), tag, events, safe=True)
        action = self._action(obs) if obs is not None else None
        js = JointState(names, position, velocity, arrival)
        from sim.observation import shield_extras  # lazy like the builder; cached after the first step

        if obs is not None:
            extras = shield_extras(self.task, obs)  # e.g. Ant's body height
        else:  # unreadable (a NaN odometry sample): a glitch to the shield, not an envelope exit
            extras = dict.fromkeys(shield_extras(self.task, np.zeros(len(self.task.obs_names))), math.nan)
        out = self.shield.filter(js, action, now, extras=extras)
        ep.interventions += len(out.interventions)
        tag = self._tag(ep.id, stamp_ns)
        if self.lockstep and stamp_ns == ep.answered_stamp:
            # a re-sent state answered anew (not from the cache: a watchdog's stop came between):
            # the simulator may still step with any earlier answer, and without an echo the first
            ep.answers[self._seq] = out.command
        else:
            ep.prev = (obs, out.command) if obs is not None else None
            if self.lockstep:  # realtime states carry no echo: nothing to look up, keep the tick lean
                ep.answers, ep.answered_stamp = {self._seq: out.command}, stamp_ns
        return StepOutput(out.command, action, out.interventions, tag, events, out.safe)

    def sent_outside_filter(self) -> np.ndarray | None:
        """The safe command for a caller that sends it without a shield step (between episodes, a
        stop, a failed tick, the halt); the shield's rate limits then start from it. None where
        it would be a guessed position hold (no pose measured: the middle of each range): send
        nothing then, the position controller holds on silence."""
        if self.shield.hold_is_a_guess():
            return None
        cmd = np.asarray(self.shield.safe_command(), dtype=np.float64)
        self.shield.forget_commands()
        return cmd

    def before_publish(self, out: StepOutput, estop_seen: Any) -> StepOutput:
        """``out``, or the safe command when ``bremen/estop`` arrived (``estop_seen``, an Event set
        outside the runner's lock) while the tick computed ``out``: the e-stop callback that
        latches the shield waits for the tick, which must not publish the policy's command first."""
        if out.command is None or out.safe or not estop_seen.is_set():
            return out
        from safety import Intervention

        self.shield.estop("bremen/estop")
        iv = Intervention("estop", None, None, None, "e-stop arrived during the control tick")
        if self.episode is not None:
            self.episode.interventions += 1
            self.episode.prev = None
        ep_stamp = parse_tag(out.tag) or (-1, -1)
        return replace(  # a new tag: the computed command went nowhere, this is another one
            out,
            command=self.sent_outside_filter(),
            interventions=(*out.interventions, iv),
            safe=True,
            tag=self._tag(*ep_stamp),
        )

    def after_watchdog(self, out: StepOutput, stop: str | None) -> StepOutput:
        """``out``, or the safe command when the realtime tick watchdog sent the safe command
        while this tick ran (``stop``: what it logged; :mod:`bremen_robot.ros.tick_watchdog`).
        The tick's command was computed from a state the watchdog already judged too old, and
        published now it would undo the stop. One ``stale_observation`` intervention; nothing
        latches, and the next tick's rate limits start from the safe command the robot got."""
        if stop is None:
            return out
        from safety import Intervention

        iv = Intervention("stale_observation", None, None, None, f"{stop}; this tick's command was dropped")
        if self.episode is not None:
            self.episode.interventions += 1
            self.episode.prev = None
        cmd = out.command
        if cmd is None or not out.safe:  # nothing, or a policy command: the safe command stands
            safe = self.sent_outside_filter()
            cmd = None if cmd is None else safe
        return replace(out, command=cmd, interventions=(*out.interventions, iv), safe=True)

    def watchdog(self, now: float) -> StepOutput | None:
        """The safe command when observations stopped arriving (None while they are fresh, and
        where a position hold would be a guess: no pose measured yet, so it would be the middle of
        each range; the position controller holds on silence)."""
        if self.shield.hold_is_a_guess():
            return None
        out = self.shield.watchdog(now)
        if out is None:
            return None
        ep = self.episode
        stamp = ep.last_stamp_ns if ep is not None else -1
        tag = self._tag(ep.id if ep else -1, stamp)
        if ep is not None:
            ep.interventions += len(out.interventions)
            if self.lockstep:  # the simulator steps with the first of the two to reach it, and names it
                ep.answers[self._seq] = out.command
            else:
                ep.prev = None
        return StepOutput(out.command, None, out.interventions, tag, [], True)


def stepped_command(echo: str, answers: dict[int, np.ndarray], first: np.ndarray) -> np.ndarray:
    """Lockstep: of the commands that answered one state (``answers``, by sequence number), the
    one the next state's ``echo`` names as the one the simulator stepped with; ``first`` (the
    policy's, which steps unless it is lost) where the echo names none, as ingest does."""
    cid = parse_command_id(echo)
    if cid is None or cid[2] is None:
        return first
    return answers.get(cid[2], first)
