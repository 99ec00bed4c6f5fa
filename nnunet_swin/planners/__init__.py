"""Experiment planners: target spacing, anisotropic patch from the fingerprint, network choice.

``padding`` (the crop geometry of paper eq. 4) is pure numpy and is imported by evaluation and analysis too, so this
package imports the planner classes (nnU-Net, torch) only when they are asked for.
"""
__all__ = ["PLANNERS", "SMITPlanner", "SwinPlannerBase", "SwinUNETRPlanner"]


def __getattr__(name):
    if name in __all__:
        from nnunet_swin.planners import swin_planner
        planners = {"SMITPlanner": swin_planner.SMITPlanner, "SwinUNETRPlanner": swin_planner.SwinUNETRPlanner}
        return planners if name == "PLANNERS" else getattr(swin_planner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
