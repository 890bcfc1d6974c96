"""The summary mail's relay settings: TLS modes, a login only over TLS, the password's
environment variable by name (never in the YAML)."""

from __future__ import annotations

from typing import Any

import pytest

from callgateway.config import ConfigError, parse_config

CLINIC = {
    "id": "c",
    "name": "C",
    "region": "uk",
    "timezone": "Europe/London",
    "numbers": ["+442071234567"],
    "greeting": "Hello.",
}
RELAY = {"to": ["manager@clinic.example"], "smtp_host": "smtp.example", "from": "g@c.example"}


def mail(**settings: Any) -> Any:
    config = parse_config(
        {
            "regions": {"uk": {"aws_region": "eu-west-2", "bucket": "b"}},
            "clinics": [{**CLINIC, "summary_email": {**RELAY, **settings}}],
        }
    )
    return config.clinics[0].summary_email


def test_implicit_tls_defaults_to_port_465_and_a_plain_relay_to_25() -> None:
    assert mail(implicit_tls=True).smtp_port == 465
    assert mail(implicit_tls=True, smtp_port=2465).smtp_port == 2465
    assert mail().smtp_port == 25 and not mail().implicit_tls and not mail().starttls


def test_a_login_names_the_environment_variable_of_its_password() -> None:
    settings = mail(starttls=True, smtp_port=587, username="g@c.example")
    assert (settings.username, settings.password_env) == ("g@c.example", "SMTP_PASSWORD")
    assert mail(implicit_tls=True, username="u", password_env="CLINIC_SMTP").password_env == (
        "CLINIC_SMTP"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"username": "u"}, "username: an SMTP login needs starttls or implicit_tls"),
        ({"starttls": True, "implicit_tls": True}, "starttls and implicit_tls: choose one"),
        ({"password": "hunter2"}, "password"),  # no secret in the YAML: an unknown key
        ({"starttls": True, "username": "u", "password_env": "lower"}, "password_env"),
    ],
)
def test_bad_relay_settings_name_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        mail(**settings)
    assert str(err.value).startswith("clinics[0].summary_email"), str(err.value)
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)
