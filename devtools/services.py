"""Start and stop local Redis, PostgreSQL and S3 (moto) on loopback for dev, tests and bench.

`python -m devtools.services run -- CMD...` is the `make dev` driver and
`python -m devtools.services apt` installs the system packages. Top-level imports are
stdlib only so that `apt` runs under the system Python before the venv exists; the client
libraries (redis, psycopg, boto3) are imported where a probe needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO
from urllib.parse import urlsplit, urlunsplit

DEV_REDIS_PORT = 6379
DEV_MOTO_PORT = 5055
DEV_TWILIO_PORT = 5056
DEV_RELAY_PORT = 8001
DEV_DIR = Path("var/dev")
DEFAULT_CONFIG = "config/example.yaml"
POSTGRES_DB = "callgateway"


class ServiceError(RuntimeError):
    """A service did not start or is not reachable; the message names it."""


@dataclass
class Service:
    """A local service on loopback. `stop()` only ever stops a process we started."""

    name: str
    url: str
    port: int = 0
    log_path: Path | None = None
    # How to (re)spawn the process and tell that it answers; None for a reused service.
    launch: Callable[[IO[bytes]], subprocess.Popen[bytes]] | None = field(default=None, repr=False)
    probe: Callable[[], None] | None = field(default=None, repr=False)
    stop_signal: int = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def owned(self) -> bool:
        return self.launch is not None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Spawn the process (again, on the same port) and wait until it answers."""
        if self.launch is None or self.log_path is None:
            raise ServiceError(f"{self.name}: not started by us, cannot start it")
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self.process = self.launch(log)
        self._wait_ready(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        _terminate(self.process, self.stop_signal, timeout)
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def _wait_ready(self, timeout: float) -> None:
        assert self.probe is not None and self.process is not None
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise ServiceError(self._failure(f"exited with code {code} before answering"))
            try:
                self.probe()
                return
            except Exception as exc:
                last_error = _one_line(exc)
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    self._failure(f"did not answer within {timeout:g}s ({last_error})")
                )
            time.sleep(0.1)

    def _failure(self, what: str) -> str:
        return (
            f"{self.name} on port {self.port} {what}\n"
            f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
        )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (racy by nature; fine on a dev box or CI)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# --- Redis -------------------------------------------------------------------------------


def start_redis(port: int, workdir: Path, timeout: float = 30.0) -> Service:
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    binary = _require_binary("redis-server", "redis-server")
    url = f"redis://127.0.0.1:{port}/0"
    argv = [
        binary,
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)),
        # Throwaway data: no snapshots, no append-only file.
        *("--save", "", "--appendonly", "no", "--daemonize", "no"),
    ]
    service = Service(
        name="redis",
        url=url,
        port=port,
        log_path=workdir / "redis.log",
        launch=lambda log: _spawn(argv, log),
        probe=lambda: redis_ping(url),
    )
    service.start(timeout)
    return service


def redis_ping(url: str, timeout: float = 1.0) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


# --- PostgreSQL --------------------------------------------------------------------------


def start_postgres(port: int, workdir: Path, timeout: float = 60.0) -> Service:
    """Initialise (once) and run a trust-auth cluster on 127.0.0.1 with database `callgateway`.

    PostgreSQL refuses to run as root, so when we are root the cluster belongs to, and runs
    as, the `postgres` system user.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "postgres"
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise ServiceError("postgres: initdb not found; run `make system-deps`")
    user = "postgres" if os.geteuid() == 0 else None
    log_path = workdir / "postgres.log"
    if not (data / "PG_VERSION").exists():
        _initdb(bin_dir, data, user, log_path)

    argv = [
        str(bin_dir / "postgres"),
        *("-D", str(data), "-p", str(port)),
        *("-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="),
        # Throwaway data: durability costs time and buys nothing here.
        *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
    ]
    admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    service = Service(
        name="postgres",
        url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/{POSTGRES_DB}",
        port=port,
        log_path=log_path,
        launch=lambda log: _spawn(argv, log, user=user, cwd=data),
        probe=lambda: _pg_execute(admin_url, "select 1"),
        stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for clients
    )
    service.start(timeout)
    create_database(service, POSTGRES_DB)
    return service


def create_database(service: Service, name: str) -> str:
    """Create database `name` on the server when missing; return its SQLAlchemy URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"database name must be a lower-case identifier, not {name!r}")
    admin_url = f"postgresql://postgres@127.0.0.1:{service.port}/postgres"
    exists = _pg_execute(admin_url, "select 1 from pg_database where datname = %s", (name,))
    if not exists:
        _pg_execute(admin_url, f'create database "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{service.port}/{name}"


def drop_database(service: Service, name: str) -> None:
    admin_url = f"postgresql://postgres@127.0.0.1:{service.port}/postgres"
    _pg_execute(admin_url, f'drop database if exists "{name}" with (force)')


def postgres_bin_dir() -> Path | None:
    """Debian keeps initdb/postgres off PATH, under /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def _initdb(bin_dir: Path, data: Path, user: str | None, log_path: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    if user:
        shutil.chown(data, user, user)
        # Every parent must be traversable by that user; say so rather than fail obscurely.
        probe = subprocess.run(["test", "-w", str(data)], user=user, check=False)
        if probe.returncode != 0:
            raise ServiceError(
                f"postgres: user {user!r} cannot reach {data}; "
                "use a work dir whose parents are world-traversable (e.g. under /tmp)"
            )
    argv = [
        str(bin_dir / "initdb"),
        *("-D", str(data), "-U", "postgres", "--auth=trust"),
        *("--encoding=UTF8", "--no-locale", "--no-sync"),
    ]
    with log_path.open("ab") as log:
        done = subprocess.run(argv, user=user, cwd=data, stdout=log, stderr=log, check=False)
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise ServiceError(f"postgres: initdb failed\n--- last lines of {log_path} ---\n{tail}")


def _pg_execute(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


# --- S3 (moto) ---------------------------------------------------------------------------


def start_moto(port: int, workdir: Path | None = None, timeout: float = 30.0) -> Service:
    """moto's server mode: one process answers S3 for every region."""
    workdir = Path(workdir or DEV_DIR).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    service = Service(
        name="moto",
        url=url,
        port=port,
        log_path=workdir / "moto.log",
        launch=lambda log: _spawn(argv, log),
        probe=lambda: http_ping(url),
    )
    service.start(timeout)
    return service


def http_ping(url: str, timeout: float = 1.0) -> None:
    """Raise unless something answers HTTP at `url` (any status counts as answering)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass


# --- processes ---------------------------------------------------------------------------


def _spawn(
    argv: Sequence[str],
    log: IO[bytes],
    *,
    user: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    # Own session: a terminal Ctrl-C reaches only the foreground command, and we stop the
    # services in order afterwards. The parent-death signal keeps them from outliving us.
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        user=user,
        cwd=cwd,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _terminate(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _require_binary(binary: str, package: str) -> str:
    found = shutil.which(binary)
    if not found:
        raise ServiceError(f"{binary} not found; run `make system-deps` (apt package {package})")
    return found


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def redact(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --- system packages ---------------------------------------------------------------------


def _has_ensurepip() -> bool:
    # Debian's python3 lacks ensurepip (so `python3 -m venv` fails) until python3-venv is in.
    python = shutil.which("python3.11") or shutil.which("python3")
    if python is None:
        return False
    done = subprocess.run([python, "-c", "import ensurepip"], capture_output=True, check=False)
    return done.returncode == 0


APT_PACKAGES: dict[str, Callable[[], bool]] = {
    "redis-server": lambda: shutil.which("redis-server") is not None,
    "postgresql": lambda: postgres_bin_dir() is not None,
    "wrk": lambda: shutil.which("wrk") is not None,
    "chromium": lambda: shutil.which("chromium") is not None,
    "python3-venv": _has_ensurepip,
}


def ensure_apt_packages(packages: dict[str, Callable[[], bool]] | None = None) -> list[str]:
    """apt-get install the packages whose probe fails (one `apt-get update` first).

    Returns the packages installed; does nothing, and needs no root, when all are present.
    """
    missing = [name for name, present in (packages or APT_PACKAGES).items() if not present()]
    if not missing:
        return []
    if os.geteuid() != 0:
        raise ServiceError(f"missing system packages; as root run: apt-get install {missing}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], env=env, check=True)
    subprocess.run(["apt-get", "install", "-y", *missing], env=env, check=True)
    return missing


# --- the `make dev` driver ---------------------------------------------------------------


class _Stop(Exception):
    """SIGINT or SIGTERM arrived; carries the signal to pass on to the command."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signum)


def _venv_tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _use_or_start_redis(env: dict[str, str], started: list[Service]) -> str:
    given = env.get("REDIS_URL")
    if given:
        try:
            redis_ping(given, timeout=3)
        except Exception as exc:
            message = f"REDIS_URL={redact(given)} is not reachable: {_one_line(exc)}"
            raise ServiceError(message) from None
        print(f"redis: using REDIS_URL {redact(given)}", flush=True)
        return given
    local = f"redis://127.0.0.1:{DEV_REDIS_PORT}/0"
    with contextlib.suppress(Exception):
        redis_ping(local)
        print(f"redis: reusing the one already answering at {local}", flush=True)
        return local
    service = start_redis(DEV_REDIS_PORT, DEV_DIR / "redis")
    started.append(service)
    print(f"redis: started {service.url}", flush=True)
    return service.url


def _use_or_start_s3(env: dict[str, str], started: list[Service]) -> str:
    given = env.get("AWS_ENDPOINT_URL")
    if given:
        try:
            http_ping(given, timeout=3)
        except Exception as exc:
            message = f"AWS_ENDPOINT_URL={redact(given)} is not reachable: {_one_line(exc)}"
            raise ServiceError(message) from None
        print(f"s3: using AWS_ENDPOINT_URL {redact(given)}", flush=True)
        return given
    if port_in_use(DEV_MOTO_PORT):
        raise ServiceError(
            f"s3: port {DEV_MOTO_PORT} is taken; set AWS_ENDPOINT_URL to use that endpoint"
        )
    service = start_moto(DEV_MOTO_PORT, DEV_DIR)
    started.append(service)
    # moto accepts any credentials but boto3 insists on having some.
    env.setdefault("AWS_ACCESS_KEY_ID", "dev")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "dev")
    print(f"s3: started moto {service.url}", flush=True)
    return service.url


def _cli_has(env: dict[str, str], *words: str) -> bool:
    done = subprocess.run(
        [_venv_tool("callgateway"), *words, "--help"], env=env, capture_output=True, check=False
    )
    return done.returncode == 0


def _migrate(env: dict[str, str]) -> None:
    subprocess.run([_venv_tool("callgateway"), "db", "upgrade"], env=env, check=True)


def _init_storage(env: dict[str, str]) -> None:
    if _cli_has(env, "storage", "init"):
        subprocess.run([_venv_tool("callgateway"), "storage", "init"], env=env, check=True)
        return
    # Fallback while the CLI lacks the subcommand: create each region's bucket when missing.
    create_buckets(Path(env.get("CALLGATEWAY_CONFIG", DEFAULT_CONFIG)), env)


def create_buckets(config_path: Path, env: Mapping[str, str]) -> list[str]:
    """Create the configured regions' buckets at env's AWS_ENDPOINT_URL when missing.

    Credentials come from `env` too (not this process's environment). Returns new buckets.
    """
    import boto3
    import botocore.exceptions

    from callgateway.config import load_config

    created: list[str] = []
    for region in load_config(config_path).regions.values():
        s3 = boto3.client(
            "s3",
            region_name=region.aws_region,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
        )
        try:
            s3.head_bucket(Bucket=region.bucket)
            continue
        except botocore.exceptions.ClientError:
            pass
        if region.aws_region == "us-east-1":  # S3 rejects us-east-1 as a LocationConstraint
            s3.create_bucket(Bucket=region.bucket)
        else:
            s3.create_bucket(
                Bucket=region.bucket,
                CreateBucketConfiguration={"LocationConstraint": region.aws_region},
            )
        created.append(region.bucket)
        print(f"s3: created bucket {region.bucket} in {region.aws_region}", flush=True)
    return created


def _use_or_start_devtwilio(env: dict[str, str], started: list[Service]) -> str:
    """The fake Twilio REST API (devtools.fake_twilio) unless TWILIO_API_BASE is set; its
    URL also goes to var/dev/devtwilio.url, where `callgateway call` finds it."""
    if env.get("TWILIO_API_BASE"):
        print(f"twilio: using TWILIO_API_BASE {redact(env['TWILIO_API_BASE'])}", flush=True)
        return env["TWILIO_API_BASE"]
    port = DEV_TWILIO_PORT if not port_in_use(DEV_TWILIO_PORT) else free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "devtools.fake_twilio", "--port", str(port),
            "--log", str(DEV_DIR / "twilio-requests.jsonl")]  # fmt: skip
    service = Service(
        name="devtwilio",
        url=url,
        port=port,
        log_path=DEV_DIR / "devtwilio.log",
        launch=lambda log: _spawn(argv, log),
        probe=lambda: http_ping(url + "/_dev/log"),
    )
    service.start()
    started.append(service)
    (DEV_DIR / "devtwilio.url").write_text(url + "\n", encoding="utf-8")
    print(f"twilio: fake REST API on {url} (requests logged in var/dev)", flush=True)
    return url


DEV_ENV_FILE = DEV_DIR / "env.json"
# What a second terminal's `callgateway ...` needs to reach the services `make dev` chose.
_SHARED = ("REDIS_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
           "TWILIO_API_BASE")  # fmt: skip


def _write_dev_env(env: dict[str, str]) -> None:
    shared = {k: env[k] for k in _SHARED if env.get(k)}
    DEV_ENV_FILE.write_text(json.dumps(shared, indent=2) + "\n", encoding="utf-8")
    DEV_ENV_FILE.chmod(0o600)


def _start_relay(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The ConversationRelay process (`callgateway relay`) for clinics with `relay:`.

    Unless PUBLIC_BASE_URL or RELAY_PUBLIC_URL say where Twilio reaches it, the web process
    and the relay agree on its loopback URL (env is shared with the command run after this).
    """
    port = DEV_RELAY_PORT if not port_in_use(DEV_RELAY_PORT) else free_port()
    if not env.get("RELAY_PUBLIC_URL") and not env.get("PUBLIC_BASE_URL"):
        env["RELAY_PUBLIC_URL"] = f"ws://127.0.0.1:{port}"
    log_path = DEV_DIR / "relay.log"
    argv = [_venv_tool("callgateway"), "relay", "--port", str(port)]
    with log_path.open("ab") as log:
        child = _spawn(argv, log, env=env)
    print(f"relay: ConversationRelay on ws://127.0.0.1:{port} (pid {child.pid}, log {log_path})")
    return child


def run(cmd: Sequence[str]) -> int:
    """Start (or reuse) Redis and S3, migrate, create buckets, run a worker, the relay and
    `cmd`.

    Whatever this started is stopped when `cmd` exits or on SIGINT/SIGTERM; nothing else is.
    """
    if not cmd:
        raise ServiceError("run: nothing to run; usage: run -- CMD...")
    env = dict(os.environ)
    started: list[Service] = []
    children: list[subprocess.Popen[bytes]] = []
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    DEV_DIR.mkdir(parents=True, exist_ok=True)  # also makes var/ for the SQLite default
    try:
        env["REDIS_URL"] = _use_or_start_redis(env, started)
        env["AWS_ENDPOINT_URL"] = _use_or_start_s3(env, started)
        _migrate(env)
        _init_storage(env)
        env["TWILIO_API_BASE"] = _use_or_start_devtwilio(env, started)
        _write_dev_env(env)
        # Recurring jobs (daily sweep; reminder/check-in chains and summaries) live in
        # Redis: (re)book them at every start, both commands are idempotent.
        for words in (("retention", "schedule"), ("outbound", "resync")):
            subprocess.run([_venv_tool("callgateway"), *words], env=env, check=False)
        worker_log = DEV_DIR / "worker.log"
        worker_argv = [
            *(_venv_tool("rq"), "worker", "--with-scheduler"),
            *("--worker-class", "callgateway.jobs.worker.Worker", "-u", env["REDIS_URL"]),
        ]
        with worker_log.open("ab") as log:
            children.append(_spawn([*worker_argv, "default"], log, env=env))
            print(f"worker: rq worker started (pid {children[-1].pid}, log {worker_log})")
            # The outbox sweeper: delivers what a lost enqueue (Redis blip) left behind.
            sweeper = [_venv_tool("callgateway"), "outbox", "drain", "--watch", "30"]
            children.append(_spawn(sweeper, log, env=env))
            print(f"outbox: sweeper running (pid {children[-1].pid})", flush=True)
        children.append(_start_relay(env))
        # Foreground, same process group: the terminal's Ctrl-C reaches it directly.
        command = subprocess.Popen(list(cmd), env=env)
        children.append(command)
        try:
            code = command.wait()
        except _Stop as stop:
            # Pass the signal on (a terminal Ctrl-C already reached it; twice is harmless).
            _terminate(command, stop.signum, timeout=10)
            code = 128 + stop.signum
        return 128 - code if code < 0 else code
    except _Stop as stop:
        return 128 + stop.signum
    finally:
        # Finish stopping even if the user presses Ctrl-C again.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            _terminate(child, signal.SIGTERM, timeout=10)
        DEV_ENV_FILE.unlink(missing_ok=True)
        for service in reversed(started):
            service.stop()
            print(f"{service.name}: stopped", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.services")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("apt", help="apt-get install the missing system packages")
    run_parser = sub.add_parser("run", help="start local services, then run CMD")
    run_parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD...")
    args = parser.parse_args(argv)
    try:
        if args.action == "apt":
            installed = ensure_apt_packages()
            print(f"installed: {' '.join(installed)}" if installed else "system packages present")
            return 0
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        return run(cmd)
    except (ServiceError, subprocess.CalledProcessError) as exc:
        print(f"devservices: {str(exc).strip()}", file=sys.stderr)
        return 1
    except Exception as exc:  # e.g. a config error from bucket creation: one line, not a trace
        print(f"devservices: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
