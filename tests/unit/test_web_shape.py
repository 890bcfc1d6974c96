"""The web process shape: the Procfile's `web` and `callgateway serve` run the same gunicorn
worker class with the same threads, and the LLM bench reads the Procfile as it is written."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bench.llm import procfile_web
from callgateway.cli.common import main
from callgateway.cli.serve_cmd import THREADS

ROOT = Path(__file__).resolve().parents[2]


def test_the_procfile_web_process_is_gthread_with_the_threads_serve_uses() -> None:
    workers, shape = procfile_web(ROOT / "Procfile")
    assert workers == 2
    assert shape == [
        *("-c", "python:callgateway.ops.gunicorn_conf"),  # the metrics' multiprocess hooks
        *("--worker-class", "gthread", "--threads", str(THREADS)),
        *("--logger-class", "callgateway.cli.serve_cmd.JsonLogger"),  # one JSON log stream
    ]


def test_the_bench_reads_defaults_and_leaves_bind_and_app_out(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "worker: rq worker\n"
        "web: gunicorn -w ${N:-3} -k gthread --threads ${T:-8} -b 0.0.0.0:${PORT:-8000} 'a:b()'\n"
    )
    assert procfile_web(procfile) == (3, ["-k", "gthread", "--threads", "8"])


def test_serve_refuses_a_thread_count_that_is_not_a_number_with_one_line() -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "1"], env={"WEB_THREADS": "many"})
    assert result.exit_code == 2
    assert "Invalid value for '--threads'" in result.output
