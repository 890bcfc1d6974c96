"""The daily summary through an SMTP relay that wants a login over TLS (Microsoft 365,
Gmail, SES): STARTTLS on a submission port, or implicit TLS (port 465). A real local
aiosmtpd server with authentication and a self-signed certificate made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.adapters.mailer import MailError, SmtpMailer, mailer_for
from callgateway.config import Config, SummaryEmail
from callgateway.db.models_outbound import SummaryEmail as SummaryRow
from callgateway.outbound import summary
from callgateway.wiring import Services
from devtools.services import free_port

# aiosmtpd counts only STARTTLS as TLS, and warns when the implicit-TLS relay asks for AUTH.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
USER = "gateway@riverside.example"
PASSWORD = "correct-horse-battery-staple-42"
DAY = dt.date(2037, 6, 8)
NOW = dt.datetime(2037, 6, 9, 6, 0, tzinfo=dt.UTC)


@dataclass
class Relay:
    port: int
    mail: list[Message] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append({"tls": tls, "login": session.auth_data})
        self.mail.append(message_from_bytes(envelope.content))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=USER if ok else None)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made here: (cert.pem, key.pem)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> None:
    """The relay's certificate is trusted, as an operator's private CA would be."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


@pytest.fixture
def starttls_relay(certificate: tuple[Path, Path]) -> Iterator[Relay]:
    """A submission port: STARTTLS required before AUTH, AUTH required before mail."""
    relay = Relay(free_port())
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=relay.port,
        tls_context=server_context(certificate),
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    yield relay
    controller.stop()


@pytest.fixture
def implicit_tls_relay(certificate: tuple[Path, Path]) -> Iterator[Relay]:
    """Port 465 style: TLS from the first byte, AUTH required before mail."""
    relay = Relay(free_port())
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=relay.port,
        ssl_context=server_context(certificate),
        auth_required=True,
        auth_require_tls=False,  # aiosmtpd counts only STARTTLS as TLS; this socket is TLS
        authenticator=authenticate,
    )
    controller.start()
    yield relay
    controller.stop()


def with_relay(config: Config, port: int, **mail: Any) -> Config:
    settings = SummaryEmail.model_validate(
        {
            "to": ["manager@riverside.example"],
            "from": USER,
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "username": USER,
            "password_env": "RIVERSIDE_SMTP_PASSWORD",
            **mail,
        }
    )
    clinics = [
        c.model_copy(update={"summary_email": settings}) if c.id == "riverside-physio" else c
        for c in config.clinics
    ]
    return config.model_copy(update={"clinics": clinics})


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RIVERSIDE_SMTP_PASSWORD", PASSWORD)
    return PASSWORD


def gateway(make: Callable[..., Services], url: str, config: Config) -> Services:
    svc = make(url, config)
    svc.clock = fixed(NOW)
    return svc


def status(svc: Services) -> str:
    with svc.db.session() as s:
        return s.scalars(select(SummaryRow.status)).one()


@pytest.mark.usefixtures("trusted", "password")
def test_the_summary_goes_out_after_starttls_and_a_login(
    make_services: Callable[..., Services],
    sqlite_url: str,
    example_config: Config,
    starttls_relay: Relay,
) -> None:
    config = with_relay(example_config, starttls_relay.port, starttls=True)
    svc = gateway(make_services, sqlite_url, config)
    assert summary.send_email(svc, "riverside-physio", DAY) == "sent"
    (mail,) = starttls_relay.mail
    assert mail["Subject"] == "Riverside Physiotherapy: outbound summary 2037-06-08"
    assert starttls_relay.sessions == [{"tls": True, "login": USER}]
    assert status(svc) == "sent"


@pytest.mark.usefixtures("trusted", "password")
def test_the_summary_goes_out_over_implicit_tls_with_a_login(
    make_services: Callable[..., Services],
    sqlite_url: str,
    example_config: Config,
    implicit_tls_relay: Relay,
) -> None:
    config = with_relay(example_config, implicit_tls_relay.port, implicit_tls=True)
    svc = gateway(make_services, sqlite_url, config)
    assert summary.send_email(svc, "riverside-physio", DAY) == "sent"
    assert len(implicit_tls_relay.mail) == 1
    assert implicit_tls_relay.sessions == [{"tls": True, "login": USER}]


@pytest.mark.usefixtures("trusted")
def test_a_wrong_password_sends_nothing_is_retried_and_is_never_logged_or_stored(
    make_services: Callable[..., Services],
    sqlite_url: str,
    example_config: Config,
    starttls_relay: Relay,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "wrong-password-never-to-be-seen"
    monkeypatch.setenv("RIVERSIDE_SMTP_PASSWORD", wrong)
    config = with_relay(example_config, starttls_relay.port, starttls=True)
    svc = gateway(make_services, sqlite_url, config)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MailError, match="SMTPAuthenticationError") as raised:
        summary.send_email(svc, "riverside-physio", DAY)
    assert starttls_relay.mail == []
    assert status(svc) == "retry"
    with svc.db.session() as s:
        stored = s.scalars(select(SummaryRow.error)).one()
    for text in (str(raised.value), stored or "", caplog.text):
        assert wrong not in text and PASSWORD not in text


@pytest.mark.usefixtures("password")
def test_a_relay_whose_certificate_does_not_verify_gets_nothing(
    make_services: Callable[..., Services],
    sqlite_url: str,
    example_config: Config,
    starttls_relay: Relay,
    implicit_tls_relay: Relay,
) -> None:
    # The self-signed certificate is not trusted here: no login, no mail, over either mode.
    for relay, mode in ((starttls_relay, "starttls"), (implicit_tls_relay, "implicit_tls")):
        config = with_relay(example_config, relay.port, **{mode: True})
        svc = gateway(make_services, sqlite_url, config)
        with pytest.raises(MailError, match="SSLCertVerificationError"):
            summary.send_email(svc, "riverside-physio", DAY)
        assert relay.mail == []


def test_a_login_without_its_password_in_the_environment_names_the_variable(
    make_services: Callable[..., Services],
    sqlite_url: str,
    example_config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RIVERSIDE_SMTP_PASSWORD", raising=False)
    config = with_relay(example_config, free_port(), starttls=True)
    svc = gateway(make_services, sqlite_url, config)
    with pytest.raises(MailError, match="RIVERSIDE_SMTP_PASSWORD is not set"):
        summary.send_email(svc, "riverside-physio", DAY)


def test_the_password_is_not_in_the_mailers_repr(
    make_services: Callable[..., Services],
    sqlite_url: str,
    example_config: Config,
    password: str,
) -> None:
    svc = gateway(make_services, sqlite_url, with_relay(example_config, 465, implicit_tls=True))
    clinic = svc.directory.by_id("riverside-physio")
    assert clinic is not None
    mailer = mailer_for(svc, clinic)
    assert isinstance(mailer, SmtpMailer) and mailer.password == password
    assert password not in repr(mailer)
