"""What a bench run starts: its own Redis, S3 endpoint, database and two gunicorn servers.

Everything binds to 127.0.0.1 and is stopped through the caller's ExitStack, on success,
error or Ctrl-C; a SIGKILLed bench takes its gunicorns with it (parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:
    from callgateway.config import Clinic

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only: the bench never sends traffic anywhere else
# moto takes any credentials and boto3 insists on some: never the caller's real ones.
BENCH_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
SERVERS = {
    "floor": "bench.floor:create_app()",
    "app": "callgateway.app:create_app()",
    "signed": "bench.floor:create_signed_app()",
    "minimal": "bench.floor:create_minimal_app()",
}
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class BenchError(RuntimeError):
    """Set-up failed; the message says what and where the log is."""


class Gunicorn:
    """A gunicorn master in its own session, so we (not the terminal) decide when it stops."""

    def __init__(
        self,
        name: str,
        port: int,
        workers: int,
        env: dict[str, str],
        log_path: Path,
        shape: Sequence[str] = ("-k", "sync"),
    ) -> None:
        """`shape`: the worker class and its options (bench.llm serves the Procfile's)."""
        self.name, self.port, self.workers, self.log_path = name, port, workers, log_path
        cmd = [
            sys.executable, "-m", "gunicorn",
            "-w", str(workers), *shape,
            "--bind", f"{HOST}:{port}",
            "--log-level", "warning",
            SERVERS[name],
        ]  # fmt: skip
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        # The master binds before workers import the app, so a TCP connect proves nothing:
        # wait for an HTTP answer (any status) from every booted worker.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} gunicorn exited ({self.proc.returncode}):\n" + tail(self.log_path)
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                if len(self.worker_pids()) >= self.workers:
                    return
            time.sleep(0.2)
        raise BenchError(
            f"{self.name} gunicorn not answering after {timeout:.0f}s:\n" + tail(self.log_path)
        )

    def worker_pids(self) -> list[int]:
        """The master's children, from /proc (Linux); empty elsewhere."""
        pid = self.proc.pid
        with contextlib.suppress(OSError):
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return []

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker, in MB (statm's second field is pages)."""
        out = []
        for pid in self.worker_pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
                out.append(pages * PAGE / 1e6)
        return out

    def log_size(self) -> int:
        self._log.flush()
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # graceful: the master stops its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
                self.proc.wait(5)
        self._log.close()


def _die_with_parent() -> None:
    # Own session keeps the terminal's Ctrl-C away from gunicorn (we stop it in order);
    # the parent-death signal keeps it from outliving a bench that was SIGKILLed.
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def start_services(
    config: Path, db: str, workdir: Path, stack: contextlib.ExitStack
) -> dict[str, str]:
    """Our own Redis, S3 and database: a bench run never touches dev data, nor dev's ours."""
    from devtools import services as ds

    def keep(service: ds.Service) -> ds.Service:
        stack.callback(service.stop)
        return service

    redis = keep(ds.start_redis(ds.free_port(), workdir / "redis"))
    moto = keep(ds.start_moto(ds.free_port(), workdir / "moto"))
    s3_env = {"AWS_ENDPOINT_URL": moto.url, **BENCH_AWS}
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the table
        ds.create_buckets(config, s3_env)
    if db == "postgres":
        workdir.chmod(0o711)  # as root, PostgreSQL runs as `postgres` and must reach its dir
        db_url = keep(ds.start_postgres(ds.free_port(), workdir / "pg")).url
    else:
        db_url = f"sqlite:///{workdir / 'bench.db'}"
    return {"DATABASE_URL": db_url, "REDIS_URL": redis.url, **s3_env}


def migrate(env: dict[str, str]) -> None:
    """`callgateway db upgrade`, as an operator would run it, against the bench database."""
    cli = str(Path(sys.executable).parent / "callgateway")
    done = subprocess.run(
        [cli, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise BenchError(f"callgateway db upgrade failed:\n{done.stdout}{done.stderr}")


def free_port() -> int:
    from devtools import services as devservices

    return int(devservices.free_port())


def base_env(services: dict[str, str], token: str, app_port: int, config: Path) -> dict[str, str]:
    # A minimal environment: nothing from the caller's shell (cloud keys, a real
    # OPENAI_API_KEY, a production REDIS_URL) can leak into the run.
    dead = f"http://{HOST}:9"  # discard port: any outbound API call fails fast, locally
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
    env.update(services)
    env.update(
        CALLGATEWAY_ENV="test",
        CALLGATEWAY_CONFIG=str(config),
        TWILIO_AUTH_TOKEN=token,
        PUBLIC_BASE_URL=f"http://{HOST}:{app_port}",
        TWILIO_API_BASE=dead,
        OPENAI_BASE_URL=dead,
        AWS_DEFAULT_REGION="eu-west-2",
        PYTHONUNBUFFERED="1",
    )
    return env


def bench_clinic(config_path: Path) -> Clinic:
    """The first clinic that does not record, its rules agent answering over <Gather> (any
    clinic if none fits)."""
    from callgateway.config import load_config

    clinics = load_config(config_path).clinics
    if not clinics:
        raise BenchError(f"{config_path}: no clinics to call")
    fits = [
        c
        for c in clinics
        if not c.recording.enabled and c.agent_kind == "rules" and not c.uses_relay
    ]
    return (fits or clinics)[0]


def clinic_number(config_path: Path) -> tuple[str, str]:
    """A number of the bench's clinic (`bench_clinic`), and that number's country."""
    number = bench_clinic(config_path).numbers[0]
    country = phonenumbers.region_code_for_number(phonenumbers.parse(number)) or "GB"
    return number, country
