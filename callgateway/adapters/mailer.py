"""The SMTP adapter for the daily summary: one narrow interface, smtplib behind it."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
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
    timeout: float = 10.0

    def send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"smtp {self.host}:{self.port}: {type(exc).__name__}") from None


def mailer_for(services: Services, clinic: Clinic) -> Mailer | None:
    """The clinic's relay, or an adapter handed in through `services.adapters['mailer']`."""
    override = services.adapters.get("mailer")
    if override is not None:
        return override  # type: ignore[no-any-return]
    cfg = clinic.summary_email
    if cfg is None:
        return None
    return SmtpMailer(cfg.smtp_host, cfg.smtp_port, cfg.starttls)
