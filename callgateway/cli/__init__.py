"""The `callgateway` command: a thin click group over the services."""

from __future__ import annotations

import sys

import click

# Each area registers its subcommands on `main` when imported.
from callgateway.cli import config_cmd, db_cmd, phone_cmd, serve_cmd  # noqa: F401
from callgateway.cli.common import main

__all__ = ["main"]


def _run() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    click.echo("use the `callgateway` command")
