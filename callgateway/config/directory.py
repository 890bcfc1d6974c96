"""Which clinic a number belongs to, and whether it is open."""

from __future__ import annotations

from datetime import datetime

from callgateway.config import Clinic, Config


class Directory:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._by_number = {n: c for c in config.clinics for n in c.numbers}
        self._by_id = {c.id: c for c in config.clinics}

    def by_number(self, number: str) -> Clinic | None:
        return self._by_number.get(number)

    def by_id(self, clinic_id: str) -> Clinic | None:
        return self._by_id.get(clinic_id)

    def all(self) -> list[Clinic]:
        return list(self.config.clinics)


def is_open(clinic: Clinic, at: datetime) -> bool:
    local = at.astimezone(clinic.tz)
    if local.date() in clinic.closed_dates:
        return False
    now = local.time()
    return any(start <= now < end for start, end in clinic.opening_hours(local.weekday()))
