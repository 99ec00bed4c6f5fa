"""Experiment planners: target spacing, anisotropic patch from the fingerprint, network choice."""
from nnunet_swin.planners.swin_planner import SMITPlanner, SwinPlannerBase, SwinUNETRPlanner

PLANNERS = {"SMITPlanner": SMITPlanner, "SwinUNETRPlanner": SwinUNETRPlanner}

__all__ = ["PLANNERS", "SMITPlanner", "SwinPlannerBase", "SwinUNETRPlanner"]
