"""`callgateway relay`: the ConversationRelay WebSocket process (uvicorn on the relay app)."""

from __future__ import annotations

import os

import click

from callgateway.cli.common import main, settings
from callgateway.config import load_config
from callgateway.config.settings import DEV_AUTH_TOKEN

# A WebSocket message from Twilio is a line of speech or an event: small. A huge one is not
# a call.
MAX_MESSAGE_BYTES = 64 * 1024


@main.command("relay")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1, 512),
    help="threads for turns that wait on a model [RELAY_THREADS or 32]",
)
def relay(port: int, host: str, threads: int | None) -> None:
    """Serve Twilio's ConversationRelay WebSocket at /twilio/relay."""
    import uvicorn

    from callgateway import logs
    from callgateway.relay.app import WS_PROTOCOL, create_relay_app

    s = settings()
    if s.is_dev and "RELAY_PUBLIC_URL" not in os.environ and "PUBLIC_BASE_URL" not in os.environ:
        # Dev default follows the port, so the handshake `callgateway call` signs matches.
        os.environ["RELAY_PUBLIC_URL"] = f"ws://127.0.0.1:{port}"
        s = settings()
    load_config(s.config_path, s.cell)  # fail here, with the key named
    if s.twilio_auth_token == DEV_AUTH_TOKEN:
        click.echo(f"dev Twilio auth token (signing key): {DEV_AUTH_TOKEN}")
    click.echo(f"ConversationRelay on ws://{host}:{port}  (Twilio connects to {s.relay_url})")
    logs.configure()
    # Their DEBUG lines would carry frames (speech); INFO and up say nothing personal.
    import logging

    logging.getLogger("websockets").setLevel(logging.WARNING)
    uvicorn.run(
        create_relay_app(threads=threads),
        host=host,
        port=port,
        ws=WS_PROTOCOL,
        ws_max_size=MAX_MESSAGE_BYTES,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
