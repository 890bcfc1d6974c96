"""The clinic config (YAML) as validated models. Errors name the offending key."""

from __future__ import annotations

import re
from datetime import date, time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from callgateway.config.hours import DAYS, parse_opening_hours, parse_quiet_hours
from callgateway.config.yaml_keys import duplicate_key
from callgateway.phone import InvalidNumber, parse_e164

CATEGORIES = (
    "call-metadata",
    "transcript",
    "recording",
    "voicemail",
    "appointment",
    "consent",
    "audit",
    "message",
)
DEFAULT_RETENTION = {
    "call-metadata": 2190,
    "transcript": 90,
    "recording": 365,
    "voicemail": 90,
    "appointment": 2555,
    "consent": 2190,
    "audit": 2190,
    "message": 365,
}
# Where a caller in danger is told to hang up and dial, by region code.
EMERGENCY_NUMBERS = {"uk": "999", "eu": "112", "us": "911", "ca": "911", "au": "000"}
DEFAULT_EMERGENCY_PHRASES = (
    "chest pain",
    "can't breathe",
    "cannot breathe",
    "can not breathe",
    "not breathing",
    "stroke",
    "suicidal",
    "kill myself",
    "overdose",
    "unconscious",
    "heart attack",
    "severe bleeding",
)


class ConfigError(ValueError):
    """The config is invalid; the message is one line naming the key."""


def _e164(value: str) -> str:
    try:
        return parse_e164(value)
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from None


E164 = Annotated[str, AfterValidator(_e164)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(Strict):
    aws_region: str
    bucket: str
    kms_key_id: str | None = None
    emergency_number: str | None = None


class Retention(Strict):
    """Days kept per data category; absent keys fall back to the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    call_metadata: int | None = Field(None, alias="call-metadata", ge=1)
    transcript: int | None = Field(None, ge=1)
    recording: int | None = Field(None, ge=1)
    voicemail: int | None = Field(None, ge=1)
    appointment: int | None = Field(None, ge=1)
    consent: int | None = Field(None, ge=1)
    audit: int | None = Field(None, ge=1)
    message: int | None = Field(None, ge=1)

    def days(self) -> dict[str, int]:
        return dict(_set_days(self))


@lru_cache(maxsize=64)
def _set_days(retention: Retention) -> tuple[tuple[str, int], ...]:
    # Frozen, so hashable: every call-log row asks, and model_dump is not free.
    return tuple(
        (k.replace("_", "-"), v) for k, v in retention.model_dump().items() if v is not None
    )


@lru_cache(maxsize=256)
def _merged_days(config: Retention, clinic: Retention) -> dict[str, int]:
    """Defaults, then the config's, then the clinic's own. Shared: callers only read it."""
    return {**DEFAULT_RETENTION, **dict(_set_days(config)), **dict(_set_days(clinic))}


class OpenAIAgent(Strict):
    kind: Literal["openai"]
    model: str = "gpt-4o-mini"
    timeout_seconds: float = Field(4.0, gt=0, le=30)


class RulesAgent(Strict):
    kind: Literal["rules"]


AGENT_KINDS = ("rules", "openai")


def _agent_shorthand(value: Any) -> Any:
    """`agent: rules` means `{kind: rules}`. The kind is checked here so that a bad one is
    reported as such, and a mapping with a good one is validated as that kind alone: its
    errors then name its own keys, not the other kind's `kind`."""
    if isinstance(value, BaseModel):  # built in code (model_copy), already validated
        return value
    data = {"kind": value} if isinstance(value, str) else value
    if not isinstance(data, dict):
        raise ValueError(f"expected one of {', '.join(AGENT_KINDS)} or a mapping with a kind")
    if "kind" not in data:
        raise ValueError(f"kind is required ({' or '.join(AGENT_KINDS)})")
    if data["kind"] not in AGENT_KINDS:
        raise ValueError(f"unknown agent kind {data['kind']!r} (use {' or '.join(AGENT_KINDS)})")
    return data


Agent = Annotated[
    RulesAgent | OpenAIAgent, Field(discriminator="kind"), BeforeValidator(_agent_shorthand)
]


class Recording(Strict):
    enabled: bool = False
    announcement: str = "This call may be recorded."


class Escalation(Strict):
    numbers: list[E164] = Field(default_factory=list)
    ring_seconds: int = Field(20, ge=5, le=120)


class AppointmentType(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    minutes: int = Field(ge=5, le=480)


class Sms(Strict):
    twilio_opt_out_replies: bool = False


HoursBefore = Annotated[int, Field(ge=1, le=24 * 30)]


class Reminders(Strict):
    sms_hours_before: list[HoursBefore] = Field(default_factory=list)
    call_hours_before: list[HoursBefore] = Field(default_factory=list)
    quiet_hours: str | None = "20:00-08:00"

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        try:
            parse_quiet_hours(value)
        except ValueError:
            raise ValueError(f"expected HH:MM-HH:MM (may wrap midnight), got {value!r}") from None
        return value


class SummaryEmail(Strict):
    """Where the daily outbound summary is mailed (SMTP relay; no personal data in it).

    `starttls` upgrades a plain connection (port 587 or 25); `implicit_tls` speaks TLS from
    the first byte (port 465, its default). `username` logs in with the password read from
    the environment variable named by `password_env` (never from this file); a login is
    refused without TLS, where the password would cross the network in clear."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(min_length=1)
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(25, ge=1, le=65535)
    from_: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    starttls: bool = False
    implicit_tls: bool = False
    username: str | None = Field(None, min_length=1)
    password_env: str = Field("SMTP_PASSWORD", pattern=r"^[A-Z_][A-Z0-9_]*$")

    @model_validator(mode="after")
    def _tls(self) -> SummaryEmail:
        if self.starttls and self.implicit_tls:
            raise ValueError("starttls and implicit_tls: choose one")
        if self.username is not None and not (self.starttls or self.implicit_tls):
            raise ValueError(
                "username: an SMTP login needs starttls or implicit_tls "
                "(the password would cross the network in clear)"
            )
        if self.implicit_tls and "smtp_port" not in self.model_fields_set:
            return self.model_copy(update={"smtp_port": 465})
        return self


class Emergency(Strict):
    phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_EMERGENCY_PHRASES))
    number: str | None = None


# ConversationRelay's providers as Twilio spells them; the config may use any case.
RELAY_TTS_PROVIDERS = ("Google", "Amazon", "ElevenLabs")
RELAY_TRANSCRIPTION_PROVIDERS = ("Google", "Deepgram")
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47, as Twilio takes them


def _language(value: str) -> str:
    if not LANGUAGE_TAG.match(value):
        raise ValueError(f"not a language tag like en-GB: {value!r}")
    return value


def _one_of(choices: tuple[str, ...]) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is None:
            return None
        found = next((c for c in choices if c.lower() == value.strip().lower()), None)
        if found is None:
            raise ValueError(f"unknown provider {value!r} (use {', '.join(choices)})")
        return found

    return AfterValidator(check)


def _interruptible(value: Any) -> Any:
    # YAML reads `true`/`false` as booleans; Twilio's own aliases, but say which words we take.
    if value not in ("any", "speech", "dtmf", "none"):
        raise ValueError(f"expected any, speech, dtmf or none, got {value!r}")
    return value


class Relay(Strict):
    """Twilio ConversationRelay for this clinic's callers (contract §8): Twilio recognises
    speech and speaks our streamed text over a WebSocket, and the caller may interrupt."""

    enabled: bool = True  # the key's presence opts in; `enabled: false` opts out again
    interruptible: Annotated[
        Literal["any", "speech", "dtmf", "none"], BeforeValidator(_interruptible)
    ] = "any"
    tts_provider: Annotated[str | None, _one_of(RELAY_TTS_PROVIDERS)] = None
    voice: str | None = Field(None, min_length=1, max_length=200)
    transcription_provider: Annotated[str | None, _one_of(RELAY_TRANSCRIPTION_PROVIDERS)] = None
    languages: list[Annotated[str, AfterValidator(_language)]] = Field(default_factory=list)


class Clinic(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    region: str
    timezone: str
    numbers: list[E164] = Field(min_length=1)
    hours: dict[str, str] = Field(default_factory=dict)
    greeting: str
    language: str = "en-GB"
    agent: Agent = RulesAgent(kind="rules")
    recording: Recording = Recording()
    escalation: Escalation = Escalation()
    appointment_types: list[AppointmentType] = Field(default_factory=list)
    default_appointment_type: str | None = None
    closed_dates: list[date] = Field(default_factory=list)
    min_lead_minutes: int = Field(60, ge=0)
    retention: Retention = Retention()
    sms: Sms = Sms()
    reminders: Reminders = Reminders()
    summary_email: SummaryEmail | None = None
    emergency: Emergency = Emergency()
    voicemail_max_seconds: int = Field(120, ge=10, le=600)
    relay: Relay | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, spec in value.items():
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r} (use {', '.join(DAYS)})")
            try:
                parse_opening_hours(str(spec))
            except ValueError as exc:
                raise ValueError(f"{day}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _types(self) -> Clinic:
        ids = [t.id for t in self.appointment_types]
        if len(ids) != len(set(ids)):
            raise ValueError("appointment_types: duplicate id")
        if self.default_appointment_type and self.default_appointment_type not in ids:
            raise ValueError(
                f"default_appointment_type: unknown appointment type "
                f"{self.default_appointment_type!r}"
            )
        return self

    @property
    def uses_relay(self) -> bool:
        """Callers talk to the agent over ConversationRelay rather than <Gather>."""
        return self.relay is not None and self.relay.enabled

    @property
    def agent_kind(self) -> str:
        return self.agent.kind

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def opening_hours(self, day_index: int) -> list[tuple[time, time]]:
        """Opening ranges for a weekday (0 = Monday); empty when closed."""
        spec = self.hours.get(DAYS[day_index])
        return parse_opening_hours(spec) if spec else []

    def appointment_type(self, type_id: str) -> AppointmentType | None:
        return next((t for t in self.appointment_types if t.id == type_id), None)


class Config(Strict):
    regions: dict[str, Region]
    retention: Retention = Retention()
    clinics: list[Clinic] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        seen: dict[str, str] = {}
        ids: set[str] = set()
        for i, clinic in enumerate(self.clinics):
            if clinic.id in ids:
                raise _KeyError(f"clinics[{i}].id", f"duplicate clinic id {clinic.id!r}")
            ids.add(clinic.id)
            if clinic.region not in self.regions:
                raise _KeyError(f"clinics[{i}].region", f"unknown region {clinic.region!r}")
            for j, number in enumerate(clinic.numbers):
                if number in seen:
                    raise _KeyError(
                        f"clinics[{i}].numbers[{j}]",
                        f"number already claimed by clinic {seen[number]!r}",
                    )
                seen[number] = clinic.id
        buckets: dict[str, str] = {}
        for code, region in self.regions.items():
            if region.bucket in buckets:
                raise _KeyError(
                    f"regions.{code}.bucket",
                    f"bucket {region.bucket!r} is already region {buckets[region.bucket]!r}'s",
                )
            buckets[region.bucket] = code
        for i, clinic in enumerate(self.clinics):
            for j, number in enumerate(clinic.escalation.numbers):
                if number in seen:
                    raise _KeyError(
                        f"clinics[{i}].escalation.numbers[{j}]",
                        f"number is clinic {seen[number]!r}'s own Twilio number",
                    )
        return self

    def retention_days(self, clinic: Clinic, category: str) -> int:
        return _merged_days(self.retention, clinic.retention)[category]

    def emergency_number(self, clinic: Clinic) -> str:
        region = self.regions[clinic.region]
        return (
            clinic.emergency.number
            or region.emergency_number
            or EMERGENCY_NUMBERS.get(clinic.region, "112")
        )


class _KeyError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    previous: Any = None
    for part in loc:
        after, previous = previous, part
        if isinstance(part, int):
            out += f"[{part}]"
        elif (after == "agent" and part in AGENT_KINDS) or str(part).startswith(
            ("literal[", "function-after[")
        ):
            # The agent union's tag (which kind was chosen) and pydantic's schema names are
            # not keys of the YAML.
            continue
        else:
            # A key made of anything but plain word characters is quoted, so that a key
            # holding a newline (YAML allows it) cannot break the error onto two lines.
            name = str(part)
            shown = name if re.fullmatch(r"[\w-]+", name) else repr(name)
            out += ("." if out else "") + shown
    return out or "(root)"


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    # An unknown key first: a misspelt key also makes the intended one "missing", and the
    # misspelling is what the operator has to find and fix.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _KeyError):
        return str(ctx_error)
    message = str(ctx_error) if ctx_error else err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    message = message.removeprefix("Value error, ")
    return f"{_loc(tuple(err['loc']))}: {message}"


def parse_config(data: Any, cell: str | None = None) -> Config:
    if not isinstance(data, dict):
        raise ConfigError("(root): the config must be a mapping")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from None
    if cell is not None:
        if cell not in config.regions:
            raise ConfigError(f"CALLGATEWAY_CELL: unknown region {cell!r}")
        for i, clinic in enumerate(config.clinics):
            if clinic.region != cell:
                raise ConfigError(
                    f"clinics[{i}].region: clinic {clinic.id!r} is in region "
                    f"{clinic.region!r}, not this cell's {cell!r}"
                )
    return config


def load_config(path: Path, cell: str | None = None) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"CALLGATEWAY_CONFIG: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # not OSError: a ValueError that would escape
        raise ConfigError(f"CALLGATEWAY_CONFIG: not UTF-8 text at byte {exc.start}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"CALLGATEWAY_CONFIG: not valid YAML{where}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError("CALLGATEWAY_CONFIG: nested too deeply") from None
    twice = duplicate_key(text)
    if twice is not None:
        raise ConfigError(f"{twice}: key written twice (only one may be meant)")
    return parse_config(data, cell)
