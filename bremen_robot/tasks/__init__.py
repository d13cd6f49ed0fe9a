"""Task registry: observation layouts and known reward/termination/reset functions."""

from __future__ import annotations

from bremen_robot.errors import TaskError
from bremen_robot.tasks.base import Task, never_terminates, squared_norm
from bremen_robot.tasks.locomotion import ANT, HALFCHEETAH, HOPPER, WALKER2D
from bremen_robot.tasks.reach import PANDA_REACH
from bremen_robot.tasks.toy import POINT

_TASKS: dict[str, Task] = {t.name: t for t in (HALFCHEETAH, HOPPER, WALKER2D, ANT, POINT, PANDA_REACH)}


def register_task(task: Task) -> None:
    """Add a task (e.g. a manipulator task defined by ``sim``); names must be unique."""
    if task.name in _TASKS and _TASKS[task.name] is not task:
        raise TaskError(f"task '{task.name}' is already registered; choose another name")
    _TASKS[task.name] = task


def get_task(name: str) -> Task:
    """Look a task up by name; unknown names list the valid ones."""
    key = name.lower().replace("-", "").replace("_", "")
    for task in _TASKS.values():
        if task.name.replace("_", "") == key:
            return task
    raise TaskError(f"unknown task '{name}'; valid tasks: {', '.join(task_names())}")


def task_names() -> list[str]:
    return sorted(_TASKS)


__all__ = ["Task", "get_task", "register_task", "task_names", "never_terminates", "squared_norm"]
