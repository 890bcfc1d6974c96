"""The `callgateway` command: a thin click group over the services."""

from __future__ import annotations

import importlib
import pkgutil

from callgateway.cli.common import main

__all__ = ["main"]

# Each `*_cmd` module registers its subcommands on `main` when imported.
for _info in pkgutil.iter_modules(__path__):
    if _info.name.endswith("_cmd"):
        importlib.import_module(f"{__name__}.{_info.name}")
