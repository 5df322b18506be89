"""Presence checks for optional extras, without importing them (TensorFlow alone takes seconds to import)."""

from __future__ import annotations

import importlib.util

from backdrop.errors import RuntimeUnavailable


def require_modules(*modules: str, purpose: str, hint: str) -> None:
    """Raise RuntimeUnavailable naming every missing module and what to install, unless all are importable."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise RuntimeUnavailable(f"{purpose} needs {', '.join(missing)}: {hint}")
