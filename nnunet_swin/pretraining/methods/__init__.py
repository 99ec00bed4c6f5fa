"""One class per pretraining method over the one loop of ``nnunet_swin.pretraining.trainer``.

Every module of this package that defines a ``Method`` subclass with a ``name`` registers it: a third method is a
new file here (``name``, the heads it distils, its masks and losses), nothing else changes. ``METHODS`` lists the
names; ``get_method(name)`` returns the class.
"""
from __future__ import annotations

import importlib
import pkgutil

from nnunet_swin.pretraining.methods.base import Method, StepInputs


def _discover() -> dict[str, type[Method]]:
    found: dict[str, type[Method]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Method) and obj.__module__ == module.__name__ and obj.name:
                found[obj.name] = obj
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


REGISTRY = _discover()
METHODS = tuple(REGISTRY)


def get_method(name: str) -> type[Method]:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return REGISTRY[name]


__all__ = ["Method", "StepInputs", "METHODS", "REGISTRY", "get_method"]
