"""``/metrics``: Prometheus text from a registry of this process's own (no global registry).

Commands by action and outcome, command latency, audit group-commit sizes, step-up failures,
notices queued/delivered/failed, and admission (work in flight, its bound, requests told "busy").
Every label value is one of Signpost's own words (``Action``, ``Outcome``, a notice state), so no
personal data can reach a label.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.admission import Admission

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
NOTICE_STATES = ("queued", "delivered", "failed")


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
        self._stepup = Counter("signpost_stepup_failures", "Step-up codes not accepted", registry=self.registry)
        self._notices = Counter("signpost_notices", "Notices by state", ["state"], registry=self.registry)
        for state in NOTICE_STATES:
            self._notices.labels(state=state)  # shown as 0 before the first one
        self._admission: AdmissionCollector | None = None

    def command(self, action: str, outcome: str, seconds: float) -> None:
        self._commands.labels(action=action, outcome=outcome).inc()
        self._latency.labels(action=action).observe(seconds)

    def audit_batch(self, size: int) -> None:
        self._batches.observe(size)

    def stepup_failure(self) -> None:
        self._stepup.inc()

    def notices(self, state: str, count: int = 1) -> None:
        if state in NOTICE_STATES and count > 0:
            self._notices.labels(state=state).inc(count)

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


async def metrics_page(recorder: PrometheusRecorder) -> web.Response:
    response = web.Response(body=recorder.exposition(), headers={"Cache-Control": "no-store"})
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
