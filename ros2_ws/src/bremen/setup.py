"""ament_python package 'bremen': thin entry points into bremen_robot.ros, and the launch file."""

from glob import glob

from setuptools import setup

PACKAGE = "bremen"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="bremen-robot developers",
    maintainer_email="dev@bremen-robot.invalid",
    description="bremen-robot collect graph: policy_runner, sim_bridge, trajectory_logger",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "policy_runner = bremen.nodes:policy_runner",
            "sim_bridge = bremen.nodes:sim_bridge",
            "trajectory_logger = bremen.nodes:trajectory_logger",
            "reset_node = bremen.nodes:reset_node",
            "composed = bremen.nodes:composed",
        ],
    },
)
