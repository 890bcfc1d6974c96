"""The SMTP adapter for the daily summary: one narrow interface, smtplib behind it.

TLS is verified against the system's trust store (`ssl.create_default_context()`, which
honours `SSL_CERT_FILE` for a relay with a private CA): a relay whose certificate does not
verify gets nothing, and neither does one that does not offer STARTTLS when we ask for it
(no silent downgrade to plain text). The password comes from the environment and appears
in no repr, log line or stored error.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

from callgateway.config import Clinic

if TYPE_CHECKING:
    from callgateway.wiring import Services


class MailError(RuntimeError):
    """The relay refused or could not be reached; worth retrying later."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int
    starttls: bool = False
    implicit_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    def send(self, message: EmailMessage) -> None:
        try:
            with self._connect() as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
            # The class only: a server's reply may echo what it was sent.
            raise MailError(f"smtp {self.host}:{self.port}: {type(exc).__name__}") from None

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)


def mailer_for(
    services: Services, clinic: Clinic, environ: dict[str, str] | None = None
) -> Mailer | None:
    """The clinic's relay, or an adapter handed in through `services.adapters['mailer']`."""
    override = services.adapters.get("mailer")
    if override is not None:
        return override  # type: ignore[no-any-return]
    cfg = clinic.summary_email
    if cfg is None:
        return None
    password = None
    if cfg.username is not None:
        password = (os.environ if environ is None else environ).get(cfg.password_env)
        if not password:
            raise MailError(f"smtp login: the environment variable {cfg.password_env} is not set")
    return SmtpMailer(
        cfg.smtp_host,
        cfg.smtp_port,
        starttls=cfg.starttls,
        implicit_tls=cfg.implicit_tls,
        username=cfg.username,
        password=password,
    )
