"""The bench loads what it says it loads: the layout that keeps one call's requests in
order under wrk's concurrency. The requests it replays, sent through the real app, are
tests/integration/test_bench_scenarios.py.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from bench.scenarios import Context, conversation_step
from tests.support.bench import fixture_ctx  # noqa: F401  (the ctx fixture)


def test_calls_go_to_a_clinic_whose_first_answer_is_the_agent(ctx: Context) -> None:
    # The example's clinic without recording: no announcement-and-redirect first.
    assert (ctx.to_number, ctx.to_country) == ("+493012345678", "DE")


@pytest.mark.parametrize(
    ("calls", "steps", "block", "threads"),
    [(512, 5, 256, 2), (600, 5, 256, 2), (100, 7, 256, 2), (96, 7, 64, 4)],
)
def test_one_calls_steps_are_in_order_on_one_thread_and_a_block_apart(
    calls: int, steps: int, block: int, threads: int
) -> None:
    seen: dict[int, list[tuple[int, int]]] = defaultdict(list)  # call -> [(line, step)]
    for line in range(calls * steps):
        call, step = conversation_step(line, calls, steps, block)
        seen[call].append((line, step))

    assert sorted(seen) == list(range(calls))  # every call, once per pass
    for call, lines in seen.items():
        assert [step for _, step in lines] == list(range(steps))  # in order
        assert len({line % threads for line, _ in lines}) == 1  # one wrk thread
        gap = min(b - a for (a, _), (b, _) in itertools.pairwise(lines))
        last_block = call >= calls // block * block
        assert gap >= (calls % block if last_block else block)


def test_past_the_end_the_layout_repeats() -> None:
    assert conversation_step(5 * 300, 300, 5, 256) == conversation_step(0, 300, 5, 256)
