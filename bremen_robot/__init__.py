"""bremen-robot: deployment-efficient reinforcement learning on real robots (BREMEN)."""

__version__ = "0.1.0"
