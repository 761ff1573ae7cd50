"""``/metrics``: Prometheus text from a registry of this process's own (no global registry).

Commands by action and outcome, command latency, audit group-commit sizes and lag, step-up
failures, notices queued/delivered/failed, scheduled task runs, admission (work in flight,
its bound, requests told "busy"), and the cycle collector's pauses (bot/heap.py). Every label
value is one of Signpost's own words (``Action``, ``Outcome``, a notice state, a scheduled task's
fixed name, ``ok`` or ``failed``, a collector generation), so no personal data can reach a label.

The page itself is served by bot/web.py: every command builds a recorder, and one that serves no
one need not import a web server to do so (aiohttp took a fifth of such a command's start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from bot.admission import Admission
from bot.heap import GENERATIONS, PAUSE_BUCKETS, PauseTally

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
NOTICE_STATES = ("queued", "delivered", "failed", "dropped")
TASK_RESULTS = ("ok", "failed")


class PrometheusRecorder:
    """handlers.metrics.Recorder on prometheus-client."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._commands = Counter(
            "signpost_commands",
            "Commands answered, by action and outcome",
            ["action", "outcome"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "signpost_command_seconds",
            "Time to answer a command (its audit event durable)",
            ["action"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._batches = Histogram(
            "signpost_audit_batch_size", "Events per audit group commit", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self._lag = Histogram(
            "signpost_audit_lag_seconds",
            "Time from an event being handed to the audit writer to its being durable",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._waiting = Gauge(
            "signpost_audit_waiting", "Events handed to the audit writer and not yet durable", registry=self.registry
        )
        self._stepup = Counter("signpost_stepup_failures", "Step-up codes not accepted", registry=self.registry)
        self._notices = Counter("signpost_notices", "Notices by state", ["state"], registry=self.registry)
        for state in NOTICE_STATES:
            self._notices.labels(state=state)  # shown as 0 before the first one
        self._task_runs = Counter(
            "signpost_scheduler_runs",
            "Scheduled task runs, by task and result",
            ["task", "result"],
            registry=self.registry,
        )
        self._task_seconds = Histogram(
            "signpost_scheduler_task_seconds",
            "Time a scheduled task's run took",
            ["task"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._admission: AdmissionCollector | None = None
        self.gc = PauseTally()
        self.registry.register(GcCollector(self.gc))

    def command(self, action: str, outcome: str, seconds: float) -> None:
        self._commands.labels(action=action, outcome=outcome).inc()
        self._latency.labels(action=action).observe(seconds)

    def audit_batch(self, size: int, lags: Sequence[float]) -> None:
        self._batches.observe(size)
        for lag in lags:
            self._lag.observe(lag)

    def stepup_failure(self) -> None:
        self._stepup.inc()

    def notices(self, state: str, count: int = 1) -> None:
        if state in NOTICE_STATES and count > 0:
            self._notices.labels(state=state).inc(count)

    def task_run(self, task: str, result: str, seconds: float) -> None:
        if result in TASK_RESULTS:
            self._task_runs.labels(task=task, result=result).inc()
            self._task_seconds.labels(task=task).observe(seconds)

    def tasks(self, names: Sequence[str]) -> None:
        """Show every task's runs as 0 before its first, so a task that never runs is seen."""
        for name in names:
            for result in TASK_RESULTS:
                self._task_runs.labels(task=name, result=result)

    def watch_audit(self, waiting: Callable[[], int]) -> None:
        """Read the audit writer's ``waiting`` count at every scrape."""
        self._waiting.set_function(waiting)

    def watch(self, admission: Admission) -> None:
        """Report the server's admission state (bot/admission.py) with every scrape (the latest
        server's, when one process builds several)."""
        if self._admission is None:
            self._admission = AdmissionCollector(admission)
            self.registry.register(self._admission)
        self._admission.admission = admission

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class AdmissionCollector(Collector):
    """Work in flight, its bound, and requests refused "busy" (above the bound or while draining)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        a = self.admission
        yield GaugeMetricFamily("signpost_in_flight", "Requests acknowledged and not yet answered", value=a.in_flight)
        yield GaugeMetricFamily("signpost_in_flight_limit", "SIGNPOST_MAX_IN_FLIGHT", value=a.limit)
        yield CounterMetricFamily("signpost_busy_refused", 'Requests told "busy, please try again"', value=a.refused)


class GcCollector(Collector):
    """Python's cycle collections: how long each held the process, by generation, and how many
    start-up objects are frozen out of them (bot/heap.py). Read from plain counts at each scrape."""

    def __init__(self, tally: PauseTally) -> None:
        self.tally = tally

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        pauses = HistogramMetricFamily(
            "signpost_gc_pause_seconds",
            "Time each cycle collection held the process (the event loop waits), by generation",
            labels=["generation"],
        )
        for generation in GENERATIONS:
            counts, running, buckets = self.tally.counts[generation], 0, []
            for bound, count in zip([*map(str, PAUSE_BUCKETS), "+Inf"], counts, strict=True):
                running += count
                buckets.append((bound, running))
            pauses.add_metric([str(generation)], buckets, self.tally.sums[generation])
        yield pauses
        yield GaugeMetricFamily(
            "signpost_gc_frozen_objects",
            "Start-up objects frozen out of cycle collections when the server began to listen",
            value=self.tally.frozen,
        )
