"""The serving process's cycle collections: start-up's objects frozen out of them, every pause measured.

A full collection walks every object the collector tracks while the event loop waits; a server's
start-up objects (~180,000) made each one hold every request for 130–180 ms in the end-to-end
benchmark. These tests hold what an operator can see: the real `signpost run` reports the objects it
froze and the pauses by generation on /metrics, and a full collection after the freeze walks only
what was made since.
"""

from __future__ import annotations

import gc
import signal
from pathlib import Path

import aiohttp

from bot import heap
from bot.metrics import PrometheusRecorder
from tests.bot.slack.test_run import start_slack_server
from tests.fakes.slack_api import FakeSlackApi


def metric(text: str, name: str) -> float:
    """The value of the exposition line that starts with ``name`` and a space."""
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[-1])


async def test_signpost_run_freezes_its_start_up_heap_and_shows_collection_pauses_on_metrics(
    tmp_path: Path, fake_slack: FakeSlackApi
) -> None:
    base, process = await start_slack_server(tmp_path, fake_slack)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(20):  # some work, so that the young generations are collected
                async with session.get(f"{base}/healthz") as response:
                    assert response.status == 200
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
                text = await response.text()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    # Start-up's modules, tables, Bolt and aiohttp: tens of thousands of objects, frozen before listening.
    assert metric(text, "signpost_gc_frozen_objects") > 50_000
    for generation in ("0", "1", "2"):
        assert f'signpost_gc_pause_seconds_bucket{{generation="{generation}",le="+Inf"}}' in text
        assert f'signpost_gc_pause_seconds_sum{{generation="{generation}"}}' in text


def test_after_the_freeze_a_full_collection_walks_only_what_was_made_since() -> None:
    try:
        made_before = len(gc.get_objects())
        frozen = heap.freeze_start_up()
        assert frozen >= made_before * 0.9  # everything start-up left, less its garbage
        after = [object() for _ in range(100)] + [[n] for n in range(1_000)]
        walked = len(gc.get_objects())  # what a full collection walks now
        assert 1_000 <= walked < 5_000 < frozen
        assert after
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_each_collection_pause_is_told_by_generation_while_measured_and_not_after() -> None:
    told: list[tuple[int, float]] = []
    with heap.pauses_measured(lambda generation, seconds: told.append((generation, seconds))):
        gc.collect(2)
        gc.collect(0)
    gc.collect(2)
    assert [generation for generation, _ in told] == [2, 0]
    assert all(seconds > 0 for _, seconds in told)


def test_pauses_are_counted_into_their_buckets_and_shown_as_a_prometheus_histogram() -> None:
    recorder = PrometheusRecorder()
    for seconds in (0.0004, 0.004, 0.03, 0.3):
        recorder.gc.record(2, seconds)
    recorder.gc.record(0, 0.0002)
    recorder.gc.frozen = 123_456
    text = recorder.exposition().decode()
    assert 'signpost_gc_pause_seconds_bucket{generation="2",le="0.001"} 1.0' in text
    assert 'signpost_gc_pause_seconds_bucket{generation="2",le="0.005"} 2.0' in text
    assert 'signpost_gc_pause_seconds_bucket{generation="2",le="0.05"} 3.0' in text
    assert 'signpost_gc_pause_seconds_bucket{generation="2",le="0.25"} 3.0' in text
    assert 'signpost_gc_pause_seconds_bucket{generation="2",le="+Inf"} 4.0' in text
    assert 'signpost_gc_pause_seconds_count{generation="2"} 4.0' in text
    assert 'signpost_gc_pause_seconds_count{generation="0"} 1.0' in text
    assert 'signpost_gc_pause_seconds_count{generation="1"} 0.0' in text
    assert metric(text, "signpost_gc_frozen_objects") == 123_456
