"""Shared CLI plumbing: the root group, one-line errors, wired services."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from callgateway.config import ConfigError
from callgateway.config.settings import Settings, SettingsError
from callgateway.phone import InvalidNumber, parse_e164
from callgateway.wiring import Services, bootstrap

F = TypeVar("F", bound=Callable[..., Any])


class OneLineGroup(click.Group):
    """Every known failure ends as one line on stderr and a non-zero exit."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            # Click would print usage and a blank line first; the contract wants one line.
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, SettingsError, InvalidNumber) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=OneLineGroup)
@click.version_option(package_name="callgateway")
def main() -> None:
    """CallGateway: the AI voice gateway for clinics."""
    load_dev_env()


DEV_ENV_FILE = Path("var/dev/env.json")  # written by `make dev` while it runs


def load_dev_env() -> None:
    """In dev, a second terminal finds the services `make dev` started (Redis, the local S3
    endpoint and its dummy keys, the fake Twilio). Variables already set always win; outside
    dev the file is never read."""
    if os.environ.get("CALLGATEWAY_ENV", "dev") != "dev":
        return
    try:
        shared = json.loads(DEV_ENV_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    for key, value in shared.items():
        if isinstance(value, str):
            os.environ.setdefault(key, value)


def services() -> Services:
    return bootstrap()


def settings() -> Settings:
    return Settings.from_env()


def e164(value: str, strict: bool = False, option: str | None = None) -> str:
    """`value` as E.164, else a usage error naming `option` (click names it itself when
    this runs as the option's callback)."""
    try:
        return parse_e164(value, strict=strict)
    except InvalidNumber as exc:
        hint = f"'{option}'" if option else None  # quoted, as click quotes its own
        raise click.BadParameter(str(exc), param_hint=hint) from None


def phone_option(name: str = "--phone", required: bool = True) -> Callable[[F], F]:
    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        return e164(value) if value else value

    return click.option(name, required=required, callback=callback, help="E.164 number")


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def actor(command: str) -> str:
    """Who ran it, for the audit log: the operator's login and the command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}:{command}"
