"""Fixtures of the pretraining tests (helpers live in pretraining_fixtures.py)."""
from pretraining_fixtures import ct_folder  # noqa: F401
