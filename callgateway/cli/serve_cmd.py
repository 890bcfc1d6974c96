"""`callgateway serve`: gunicorn on the app factory, as the Procfile's web process."""

from __future__ import annotations

import os
from typing import Any

import click
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from callgateway import logs
from callgateway.cli.common import main, settings
from callgateway.config import load_config
from callgateway.config.settings import DEV_AUTH_TOKEN


class JsonLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger writing into the one JSON stream (callgateway.logs): its own lines
    (starting, listening, booting and reaping workers) included, in the master and every
    worker. The Procfile's `web` names it with --logger-class."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        logs.configure()  # takes gunicorn's plain-text handlers off its loggers


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from callgateway.app import create_app

        return create_app()


@main.command("serve")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def serve(port: int, host: str, workers: int) -> None:
    """Serve the gateway (webhooks and console)."""
    if "PUBLIC_BASE_URL" not in os.environ:
        # Dev default follows the port, so signatures match what `callgateway call` signs.
        os.environ["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    s = settings()
    load_config(s.config_path, s.cell)  # fail here, with the key named, not in a worker
    if s.twilio_auth_token == DEV_AUTH_TOKEN:
        click.echo(f"dev Twilio auth token (signing key): {DEV_AUTH_TOKEN}")
    click.echo(f"CallGateway on http://{host}:{port}  (PUBLIC_BASE_URL {s.public_base_url})")
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": 4,
            "accesslog": None,
            "preload_app": False,
            "graceful_timeout": 5,
            "logger_class": "callgateway.cli.serve_cmd.JsonLogger",
        }
    ).run()
