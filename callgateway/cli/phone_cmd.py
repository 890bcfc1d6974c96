"""`callgateway call` and `callgateway sms`: Twilio in a terminal."""

from __future__ import annotations

import sys

import click

from callgateway.cli.common import e164, fail, main, settings
from callgateway.cli.terminal_phone import Call, PhoneError, Webhook, new_sid, send_sms


def _from(value: str) -> str:
    return "anonymous" if value.lower() == "anonymous" else e164(value, option="--from")


@main.command("call")
@click.option("--to", "to", required=True, help="the clinic number (E.164)")
@click.option(
    "--from",
    "from_",
    default="+447700900123",
    show_default=True,
    help="caller number (E.164) or 'anonymous'",
)
@click.option("--url", "base", default=None, help="gateway base URL [PUBLIC_BASE_URL]")
@click.option(
    "--dial",
    "dial_outcome",
    default="no-answer",
    show_default=True,
    type=click.Choice(["completed", "no-answer", "busy", "failed"]),
    help="what happens when the gateway dials a person",
)
def call(to: str, from_: str, base: str | None, dial_outcome: str) -> None:
    """Call the gateway from this terminal: prints what you hear, reads what you say."""
    s = settings()
    to_number = e164(to, strict=True, option="--to")
    caller = _from(from_)
    interactive = sys.stdin.isatty()

    def read() -> str | None:
        if interactive:
            click.echo("you> ", nl=False)
        line = sys.stdin.readline()
        return None if line == "" else line.rstrip("\n")

    phone = Call(
        hook=Webhook(base or s.public_base_url, s.twilio_auth_token),
        to=to_number,
        from_="Anonymous" if caller == "anonymous" else caller,
        account_sid=s.twilio_account_sid,
        read=read,
        write=click.echo,
        dial_outcome=dial_outcome,
        twilio_api_base=s.twilio_api_base,
    )
    try:
        phone.run()
    except PhoneError as exc:
        fail(str(exc))
    click.echo("[call ended]")


@main.command("sms")
@click.option("--to", "to", required=True, help="the clinic number (E.164)")
@click.option("--from", "from_", required=True, help="sender number (E.164)")
@click.option("--url", "base", default=None, help="gateway base URL [PUBLIC_BASE_URL]")
@click.option("--message-sid", default=None, help="reuse a MessageSid (to replay a retry)")
@click.argument("body")
def sms(to: str, from_: str, base: str | None, message_sid: str | None, body: str) -> None:
    """Send a signed inbound SMS webhook and print the TwiML reply."""
    to_number = e164(to, strict=True, option="--to")
    from_number = e164(from_, option="--from")
    s = settings()
    sid = message_sid or new_sid("SM")
    hook = Webhook(base or s.public_base_url, s.twilio_auth_token)
    try:
        reply = send_sms(hook, s.twilio_account_sid, to_number, from_number, body, sid)
    except PhoneError as exc:
        fail(str(exc))
    click.echo(f"MessageSid: {sid}", err=True)
    click.echo(reply)
