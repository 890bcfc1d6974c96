"""`callgateway serve`: gunicorn on the app factory, as the Procfile's web process.

The same shape as the Procfile's `web`: gthread workers with many threads. A turn with the
`openai` agent waits most of a second on the model; a thread waiting on a socket costs
a little memory and no CPU, so one worker serves as many such turns at once as it has
threads (issue 17; `python -m bench.llm` measures it against sync workers).
"""

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
from callgateway.ops import gunicorn_conf

THREADS = 128  # the Procfile's ${WEB_THREADS:-128}


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
@click.option(
    "--threads",
    default=lambda: os.environ.get("WEB_THREADS", str(THREADS)),  # click checks it
    show_default=f"$WEB_THREADS or {THREADS}",
    type=click.IntRange(1, 1024),
    help="threads per worker: turns one worker serves at once",
)
def serve(port: int, host: str, workers: int, threads: int) -> None:
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
            "threads": threads,
            "accesslog": None,
            "preload_app": False,
            "graceful_timeout": 5,
            # Prometheus's multiprocess mode, as the Procfile's web process runs it.
            "on_starting": gunicorn_conf.on_starting,
            "post_fork": gunicorn_conf.post_fork,
            "child_exit": gunicorn_conf.child_exit,
            "logger_class": "callgateway.cli.serve_cmd.JsonLogger",
        }
    ).run()
