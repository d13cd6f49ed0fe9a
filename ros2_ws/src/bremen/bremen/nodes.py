"""Console scripts of the 'bremen' package (``ros2 run bremen policy_runner`` etc.).

Each calls the node's ``main`` in ``bremen_robot.ros`` with the process's argv, so
``--ros-args`` from ``ros2 launch`` (node name, parameters file, remappings) reach rclpy.
"""

import sys


def policy_runner() -> int:
    from bremen_robot.ros.policy_runner import main

    return main(sys.argv)


def sim_bridge() -> int:
    from bremen_robot.ros.sim_bridge import main

    return main(sys.argv)


def trajectory_logger() -> int:
    from bremen_robot.ros.trajectory_logger import main

    return main(sys.argv)


def reset_node() -> int:
    from bremen_robot.ros.reset_node import main

    return main(sys.argv)


def composed() -> int:
    from bremen_robot.ros.composed import main

    return main(sys.argv)
