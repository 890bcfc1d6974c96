"""The process's Prometheus metrics: what happened, counted where it happens.

Defined once here, in the kernel, so any room may count without importing upwards. Every
label takes one of a few fixed values (a route, a status code, a reason code): never a
number, a name, a CallSid or anything a caller said. Under gunicorn the web process runs in
prometheus-client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, set by
`callgateway.ops.gunicorn_conf`), so `/metrics` sums every worker. Figures that describe
state rather than events (queue depths, transfers waiting) are read at scrape time by
`callgateway.ops.metrics`, not counted here.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Twilio waits 15 s for a webhook; the interesting range is a millisecond to a few seconds.
_WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)

WEBHOOK_SECONDS = Histogram(
    "callgateway_webhook_duration_seconds",
    "Time to answer a Twilio webhook, by route and HTTP status",
    ["route", "status"],
    buckets=_WEBHOOK_BUCKETS,
)
FALLBACKS = Counter(
    "callgateway_fallbacks",
    "Callers sent to a person, a voicemail or an apology because something failed, by what",
    ["reason"],
)
CONSENT_DENIALS = Counter(
    "callgateway_consent_denials",
    "AI handling refused by the consent gate, by the gate's reason",
    ["reason"],
)
AGENT_TURNS = Counter(
    "callgateway_agent_turns",
    "Caller turns answered by an agent, by agent kind",
    ["agent"],
)
LLM_SECONDS = Histogram(
    "callgateway_llm_request_duration_seconds",
    "Time of one LLM request of the openai agent, by outcome (ok or error)",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13),
)
BOOKINGS = Counter(
    "callgateway_bookings",
    "Appointments booked, moved or cancelled by the agent (committed)",
    ["event"],
)
SMS = Counter(
    "callgateway_sms",
    "SMS handed to Twilio's REST API (sent) or refused by it (failed), by this process",
    ["result"],
)
SIGNIN_FAILURES = Counter(
    "callgateway_console_signin_failures",
    "Console sign-ins refused: a wrong email or password, or the rate limit",
    ["why"],
)

# Reasons an escalation means something failed (not a caller's wish or the clinic's rule).
FAILURE_REASONS = frozenset(
    {"state-unavailable", "agent-error", "agent-empty-reply", "agent-unavailable"}
)


def fallback(reason: str) -> None:
    FALLBACKS.labels(reason).inc()


def escalated(reason: str) -> None:
    """An escalation to a person: counted as a fallback only when something failed."""
    if reason in FAILURE_REASONS:
        FALLBACKS.labels(reason).inc()
