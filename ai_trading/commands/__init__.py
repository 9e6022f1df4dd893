"""Subcommand groups of the ``ai-trading`` CLI; each module has ``register(subparsers)``."""

from __future__ import annotations

import importlib
from types import ModuleType

# One entry per subcommand module, in the order `ai-trading --help` lists them.
COMMAND_MODULES: tuple[str, ...] = ("sim", "db", "keys", "manifest", "walkforward", "data", "oms", "govern", "train")


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMAND_MODULES]


def split_list(text: str | None) -> list[str] | None:
    """A comma-separated command-line list (``--symbols A,B``); None when not given."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None
