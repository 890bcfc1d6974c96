"""`python -m bench.gate`: how long the consent gate takes, and that it does not grow with
the ledger.

Times `consent.gate.Gate.may()` in-process against a real Redis and a real database (a fresh
SQLite file, or PostgreSQL with --db postgres), for a ledger of 1k and of 100k events:
p50/p99 with a warm cache (the path every AI turn and outbound action takes) and, for
reference, on a cache miss (the database fallback, one index lookup). Both rows should be
flat from 1k to 100k. Starts its own Redis (and PostgreSQL) on loopback and stops them at
the end, on error and on Ctrl-C; writes bench/results/gate.json.

Exit status: 0 when the warm p99 is under the target and flat, 1 otherwise, 2 set-up failed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from callgateway.config import load_config
from callgateway.config.settings import Settings
from callgateway.db import migrate
from callgateway.db.models import ConsentEvent
from callgateway.wiring import Services, bootstrap
from consent.gate import ACTIONS
from devtools.services import (
    Service,
    ServiceError,
    create_database,
    free_port,
    start_postgres,
    start_redis,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "example.yaml"
RESULTS = ROOT / "bench" / "results" / "gate.json"
EVENTS_PER_NUMBER = 10  # a busy ledger: many events per number, not one each
PROBES = 1_000  # distinct numbers the timed calls cycle through
# The gate's own cost on the warm path: its p99 minus a bare Redis GET's, same run.
GATE_OVERHEAD_P99_MS = 1.0
# "Flat": the p99 at the largest ledger within this factor of the smallest's, or within
# FLAT_SLACK_MS of it (sub-millisecond timings jitter by more than any real growth).
FLAT_FACTOR = 1.5
FLAT_SLACK_MS = 0.25


Probe = tuple[str, str]  # (clinic id, number)


@dataclass
class Row:
    events: int
    warm_p50_ms: float
    warm_p99_ms: float
    miss_p50_ms: float
    miss_p99_ms: float
    samples: int


def number(i: int) -> str:
    # +44 7700 xxxxxx: a possible UK mobile in a range set aside for drama; never dialled.
    return f"+447700{i:06d}"


def fill_ledger(services: Services, clinic_ids: list[str], events: int) -> list[Probe]:
    """`events` rows over events/EVENTS_PER_NUMBER numbers; returns (clinic, number) probes."""
    numbers = max(1, events // EVENTS_PER_NUMBER)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    keep = date(2032, 1, 1)
    rows = []
    for n in range(numbers):
        clinic_id = clinic_ids[n % len(clinic_ids)]
        for k in range(EVENTS_PER_NUMBER):
            rows.append(
                {
                    "clinic_id": clinic_id,
                    "phone": number(n),
                    # Alternating, ending opted out on even numbers: both answers get timed.
                    "state": "opted_out" if (k + n) % 2 == 1 else "opted_in",
                    "channel": "sms",
                    "source_id": f"SMbench{n:08d}{k:04d}",
                    "created_at": start + timedelta(minutes=n * EVENTS_PER_NUMBER + k),
                    "data_category": "consent",
                    "retention_until": keep,
                }
            )
    rows = rows[:events]
    with services.db.session() as session:
        for i in range(0, len(rows), 10_000):
            session.execute(insert(ConsentEvent), rows[i : i + 10_000])
    picks = random.Random(4).sample(range(numbers), min(PROBES, numbers))
    return [(clinic_ids[n % len(clinic_ids)], number(n)) for n in picks]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(samples: int, probes: list[Probe], call: Callable[[str, str], None]) -> list[float]:
    out = []
    for i in range(samples):
        clinic_id, phone = probes[i % len(probes)]
        t0 = time.perf_counter_ns()
        call(clinic_id, phone)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


@dataclass
class Ledger:
    """One database with a ledger of `events`, its own Redis db, and the numbers to ask."""

    events: int
    services: Services
    probes: list[Probe]
    warm: list[float]
    miss: list[float]

    def gate(self, clinic_id: str, phone: str) -> None:
        self.services.gate.may(clinic_id, phone, ACTIONS[len(phone) % len(ACTIONS)])

    def gate_after_miss(self, clinic_id: str, phone: str) -> None:
        self.services.gate.forget(clinic_id, phone)
        self.services.gate.may(clinic_id, phone, "ai_handling")


def build(events: int, database_url: str, redis_url: str) -> Ledger:
    migrate.upgrade(database_url)
    config = load_config(CONFIG)
    settings = Settings(
        env="test", config_path=CONFIG, database_url=database_url, redis_url=redis_url
    )
    services = bootstrap(settings, config)
    services.redis.flushdb()
    probes = fill_ledger(services, [c.id for c in config.clinics], events)
    ledger = Ledger(events, services, probes, [], [])
    timed(len(probes) * 2, probes, ledger.gate)  # warm the cache, pools and scripts
    return ledger


def summary(values: list[float]) -> tuple[float, float]:
    return round(statistics.median(values), 4), round(percentile(values, 0.99), 4)


@dataclass
class GateReport:
    db: str
    samples: int
    rows: list[Row]
    floor_p50_ms: float  # a bare Redis GET, same run
    floor_p99_ms: float

    @property
    def ratio(self) -> float:
        first, last = self.rows[0], self.rows[-1]
        return last.warm_p99_ms / first.warm_p99_ms if first.warm_p99_ms else 1.0

    @property
    def flat(self) -> bool:
        first, last = self.rows[0], self.rows[-1]
        return self.ratio <= FLAT_FACTOR or last.warm_p99_ms - first.warm_p99_ms <= FLAT_SLACK_MS

    @property
    def overhead_ms(self) -> float:
        return max(r.warm_p99_ms for r in self.rows) - self.floor_p99_ms

    @property
    def fast(self) -> bool:
        return self.overhead_ms < GATE_OVERHEAD_P99_MS

    def summary(self) -> str:
        first, last = self.rows[0], self.rows[-1]
        return (
            f"warm p99 {first.events:,} -> {last.events:,} events: x{self.ratio:.2f}"
            f" ({'flat' if self.flat else 'NOT flat'}); p99 over a bare Redis GET:"
            f" {self.overhead_ms:+.3f} ms (target < {GATE_OVERHEAD_P99_MS:g} ms:"
            f" {'met' if self.fast else 'MISSED'})"
        )

    def render(self) -> str:
        lines = [
            f"gate check: may() in-process, real Redis + {self.db}, {self.samples} calls per row",
            f"{'ledger events':>14} {'warm p50':>10} {'warm p99':>10} {'miss p50':>10}"
            f" {'miss p99':>10}",
            f"{'Redis GET':>14} {self.floor_p50_ms:>8.3f}ms {self.floor_p99_ms:>8.3f}ms"
            f" {'(floor)':>10}",
        ]
        for row in self.rows:
            lines.append(
                f"{row.events:>14,} {row.warm_p50_ms:>8.3f}ms {row.warm_p99_ms:>8.3f}ms"
                f" {row.miss_p50_ms:>8.3f}ms {row.miss_p99_ms:>8.3f}ms"
            )
        lines.append(self.summary())
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        return {
            "db": self.db,
            "floor_redis_get": {"p50_ms": self.floor_p50_ms, "p99_ms": self.floor_p99_ms},
            "rows": [asdict(r) for r in self.rows],
            "warm_p99_ratio": round(self.ratio, 3),
            "flat": self.flat,
            "p99_overhead_ms": round(self.overhead_ms, 3),
            "target_met": self.fast,
        }


def measure(
    db: str = "sqlite", samples: int = 20_000, sizes: list[int] | None = None
) -> GateReport:
    """Time the gate for each ledger size; raises ServiceError if Redis/PostgreSQL won't
    start. Everything it starts is stopped before it returns or raises."""
    sizes = sizes or [1_000, 100_000]
    workdir = Path(tempfile.mkdtemp(prefix="callgw-bench-gate-"))
    workdir.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root
    started: list[Service] = []
    ledgers: list[Ledger] = []
    floor: list[float] = []
    try:
        redis_service = start_redis(free_port(), workdir / "redis")
        started.append(redis_service)
        if db == "postgres":
            pg = start_postgres(free_port(), workdir / "pg")
            started.append(pg)
        base = redis_service.url.rsplit("/", 1)[0]
        for i, size in enumerate(sizes):
            if db == "postgres":
                url = create_database(pg, f"gate_{size}")
            else:
                url = f"sqlite:///{workdir / f'gate_{size}.db'}"
            ledgers.append(build(size, url, f"{base}/{i + 1}"))
        client = ledgers[0].services.redis
        client.set("floor", "opted_out:1")
        # Interleaved rounds: every ledger (and the bare Redis GET floor) sees the same
        # machine load, so what differs between rows is the ledger size, not the moment.
        rounds = 20
        for _ in range(rounds):
            floor += timed(samples // rounds, [("", "")], lambda _c, _p: client.get("floor"))
            for ledger in ledgers:
                ledger.warm += timed(samples // rounds, ledger.probes, ledger.gate)
                ledger.miss += timed(
                    max(1, samples // rounds // 4), ledger.probes, ledger.gate_after_miss
                )
    finally:
        for ledger in ledgers:
            ledger.services.db.dispose()
            ledger.services.redis.close()
        for service in reversed(started):
            service.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [
        Row(lg.events, *summary(lg.warm), *summary(lg.miss), samples=len(lg.warm)) for lg in ledgers
    ]
    return GateReport(db, samples, rows, *summary(floor))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--samples", type=int, default=20_000, help="timed calls per ledger")
    parser.add_argument(
        "--sizes", default="1000,100000", help="ledger sizes in events, comma-separated"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        report = measure(args.db, args.samples, [int(s) for s in args.sizes.split(",")])
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(report.render())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report.as_json(), indent=2))
    return 0 if report.flat and report.fast else 1


if __name__ == "__main__":
    sys.exit(main())
