"""External programs: the system's copy where present, else the one a PyPI wheel ships."""

from __future__ import annotations

import importlib
import shutil

from kimiwonosete.errors import ToolError


def executable(name: str, wheel_module: str, wheel_getter: str, install_hint: str) -> str:
    """Path of ``name`` on PATH, else ``wheel_module.wheel_getter()``; a clear error if neither.

    >>> executable("sh", "no_such_module", "x", "").endswith("/sh")
    True
    """
    found = shutil.which(name)
    if found:
        return found
    try:
        module = importlib.import_module(wheel_module)
    except ImportError as exc:
        raise ToolError(f"{name} not found: {install_hint}") from exc
    return str(getattr(module, wheel_getter)())
