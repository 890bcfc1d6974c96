"""What the fault tests share: what a caller hears, an app to call, Twilio's REST API base.

Each fault module stops one real service (tests.support.services.service_stopped restarts
it even when the test fails) and checks four things: what the caller hears (valid TwiML
ending with a person, a voicemail or a spoken apology; never a 500 and never silence), what
is stored, what is retried, and that nothing is lost once the service is back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from callgateway.app import create_app
from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.wiring import Services
from tests.support.settings import BASE_URL
from tests.support.twilio import TwilioSim

API = f"https://api.twilio.com/2010-04-01/Accounts/{DEV_ACCOUNT_SID}"
ESCALATION_UK = "+442079460000"  # riverside-physio's team, from config/example.yaml
# What Twilio does after these verbs: the caller is talking to someone, leaving a message,
# being listened to, or has been told goodbye. Anything else at the end would be silence.
ENDINGS = {"Dial", "Record", "Gather", "Hangup", "Redirect"}


def app_for(svc: Services) -> TwilioSim:
    return TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)


def heard(body: str) -> list[str]:
    """What the caller hears, in order, from a TwiML document that must parse."""
    root = ET.fromstring(body)
    assert root.tag == "Response"
    return [(el.text or "").strip() for el in root.iter("Say")]


def assert_caller_is_served(status: int, body: str) -> ET.Element:
    """200 TwiML that says something and ends with a person, a message, a question or a
    goodbye: never a 500, never an empty <Response/>."""
    assert status == 200, f"Twilio got HTTP {status}"
    root = ET.fromstring(body)
    assert root.tag == "Response" and len(root), body
    assert any((el.text or "").strip() for el in root.iter("Say")), body
    assert root[-1].tag in ENDINGS, body
    return root


def dialled(body: str) -> list[str]:
    root = ET.fromstring(body)
    return [(n.text or "").strip() for d in root.iter("Dial") for n in d.iter("Number")]
