"""`callgateway config check`."""

from __future__ import annotations

import click

from callgateway.cli.common import main, settings
from callgateway.config import load_config


@main.group("config")
def config_group() -> None:
    """Inspect the clinic config."""


@config_group.command("check")
@click.option("--file", "path", type=click.Path(), help="config file [CALLGATEWAY_CONFIG]")
def check(path: str | None) -> None:
    """Validate the config; one line per clinic, or one line naming the bad key."""
    s = settings()
    config = load_config(path or s.config_path, s.cell)
    for clinic in config.clinics:
        agent = clinic.agent_kind
        click.echo(
            f"{clinic.id}: {clinic.name} | region {clinic.region} | "
            f"{len(clinic.numbers)} number(s) | agent {agent} | "
            f"recording {'on' if clinic.recording.enabled else 'off'}"
            + (" | relay (ConversationRelay)" if clinic.uses_relay else "")
        )
