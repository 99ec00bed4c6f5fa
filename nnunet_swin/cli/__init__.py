"""Thin console-script entry points: argument parsing only, the logic lives in the subpackages."""
