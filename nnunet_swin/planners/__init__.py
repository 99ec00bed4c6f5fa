"""Experiment planners: target spacing, anisotropic patch from the fingerprint, network choice.

``swin_planner`` holds the planner classes (nnU-Net's ``ExperimentPlanner`` subclasses, so importing it imports
nnU-Net and torch); ``run`` is plan-and-preprocess through nnU-Net's API and imports them only when it runs.
"""
