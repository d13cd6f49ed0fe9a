"""ROS 2 package 'bremen': entry points only; the logic is in ``bremen_robot.ros``."""
