"""What recordings work with, handed in by the wiring: never the whole Services bag.

`Services.recordings` (callgateway/wiring.py) builds a `RecordingDesk` from the fields as
they are at that moment, because tests swap the clock, Twilio, the bucket and the queue
after bootstrap; nothing here may keep an adapter longer than one call into recordings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rq import Queue

from callgateway.adapters.clock import Clock
from callgateway.adapters.storage import RegionStorage
from callgateway.adapters.twilio_rest import TwilioRest
from callgateway.config import Clinic, Config
from callgateway.db.audit import AuditTrail
from callgateway.db.session import Database


@dataclass(frozen=True)
class RecordingDesk:
    """The announcement policy's and the lifecycle's collaborators.

    `queue`, `twilio` and `storage` are None when not wired (a one-shot tool, a test): the
    lifecycle then logs and leaves the recording where it is, as it always has.
    """

    db: Database
    config: Config
    clinic_by_id: Callable[[str], Clinic | None]
    clinic_by_number: Callable[[str], Clinic | None]
    clock: Clock
    queue: Queue | None
    twilio: TwilioRest | None
    storage: RegionStorage | None
    audit: AuditTrail
    # An absolute URL Twilio will call back, under the base it signs against.
    url: Callable[[str], str]
    # Keys objects by subject; a secret, so it never appears in a repr.
    subject_salt: str = field(repr=False)
