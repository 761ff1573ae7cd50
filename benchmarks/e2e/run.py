"""End-to-end benchmark: signed Slack slash commands in, private replies out, audit events durable.

    python -m benchmarks.e2e --children 100000 --backend sqlite|postgres --replicas 1[,2]

In one run: build a register of N children (``--generator`` is pluggable), enrol and step up the
practitioners who ask, start a recording fake Slack Web API, a bare Bolt app answering the same
signed command with a constant (the ceiling), and the real ``signpost run`` in Slack HTTP mode (one
or more replicas on one database); drive them with the same load generator and print a markdown
table (and, unless ``--no-readme``, record it in benchmarks/README.md with the machine and load).

A keyed enquiry counts as answered only when its answer reached the fake Slack API (``views.open``
/ ``views.update`` / ``chat.postEphemeral`` / a ``response_url`` POST) or came back in the
slash command's HTTP response, and an audit event by its asker naming its child exists.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from benchmarks.core import drop_postgres, fresh_postgres
from benchmarks.e2e import profile
from benchmarks.e2e.load import BOT_TOKEN, SIGNING_SECRET, Sent, Shot, Shots, closed_loop, open_loop
from benchmarks.e2e.register import Register, build_register, enrol_askers, load_generator, warm_term_keys
from bot.app import build
from handlers.clock import SystemClock
from handlers.vocabulary import LOOKUP_ACTIONS
from store.db import Database
from store.keys.crypto import KeyRing

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "benchmarks" / "README.md"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
START, END = "<!-- e2e-results: written by python -m benchmarks.e2e -->", "<!-- /e2e-results -->"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
# Slack users per phase (each a practitioner of their own): audit events are told apart by asker.
WARM, CLOSED, OPEN_KEYED, OPEN_DEMOGRAPHIC, FLOOD = 0, 100, 200, 300, 400
# Searches at 50/s come from many practitioners, not from four each searching 12 times a second
# (whose per-practitioner misuse windows would hold hundreds of events each).
DEMOGRAPHIC_ASKERS = 50


# ---- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def full_collections(session: aiohttp.ClientSession, server: Server) -> tuple[int, int, float]:
    """The server's full (generation 2) cycle collections so far, from its /metrics: how many, how
    many held it over 20 ms, and their total pause in seconds (one worker's, with --workers)."""
    async with session.get(f"{server.base}/metrics") as response:
        text = await response.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("signpost_gc_pause_seconds") and 'generation="2"' in line:
            values[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
    count = values.get('signpost_gc_pause_seconds_count{generation="2"}', 0.0)
    within = values.get('signpost_gc_pause_seconds_bucket{generation="2",le="0.02"}', 0.0)
    return int(count), int(count - within), values.get('signpost_gc_pause_seconds_sum{generation="2"}', 0.0)


@dataclass
class Server:
    name: str
    base: str
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def pids(self) -> list[int]:
        """The process and its children: the workers of `signpost run --workers N`."""
        children: list[int] = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                children += [int(pid) for pid in (task / "children").read_text().split()]
        return [self.pid, *children]


async def start(name: str, args: Sequence[str], env: dict[str, str], workdir: Path, port: int) -> Server:
    log = (workdir / f"{name}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=workdir, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    log.close()
    server = Server(name, f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                tail = (workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} exited {process.returncode}:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{server.base}/healthz") as response:
                    if response.status == 200:
                        return server
            await asyncio.sleep(0.2)
    raise SystemExit(f"{name} did not become healthy")


async def stop(server: Server) -> None:
    if server.process.returncode is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(server.process.wait(), 40)
        except TimeoutError:
            server.process.kill()
            await server.process.wait()


def base_env(workdir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "PYTHONPATH": str(ROOT),
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
    }


@contextlib.asynccontextmanager
async def servers_running(servers: list[Server]) -> AsyncIterator[list[Server]]:
    try:
        yield servers
    finally:
        await asyncio.gather(*(stop(s) for s in servers))


# ---- measuring ------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One load phase against one target: what was sent and what came back, when."""

    name: str
    sent: list[Sent]
    started: float
    sending_s: float
    delivered: dict[str, float] = field(default_factory=dict)  # request id -> when its answer arrived
    cpu_s: float = 0.0
    answered: list[Sent] = field(default_factory=list)  # delivered and audited

    @property
    def acknowledged(self) -> list[Sent]:
        return [s for s in self.sent if s.status == 200 and s.ack != "busy"]

    def busy(self) -> int:
        return sum(s.ack == "busy" for s in self.sent)

    def latencies_ms(self) -> list[float]:
        return [(self.when(s) - s.t_send) * 1000 for s in self.answered]

    def when(self, s: Sent) -> float:
        return s.t_ack if s.ack == "answer" else self.delivered[s.shot.rid]

    def answered_per_s(self) -> float:
        if not self.answered:
            return 0.0
        last = max(self.when(s) for s in self.answered)
        return len(self.answered) / max(last - self.started, self.sending_s)


class FakeSlack:
    """The load generator's view of the recording fake: answers delivered, by request id."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session
        self.seen = 0
        self.answers: dict[str, float] = {}
        self.ephemeral: dict[str, list[float]] = {}  # chat.postEphemeral answers by user, oldest first
        self.methods: dict[str, int] = {}

    async def poll(self) -> None:
        async with self.session.get(f"{self.base}/_records", params={"since": str(self.seen)}) as response:
            doc = await response.json()
        self.methods = doc["methods"]
        for _method, rid, at, kind in doc["records"]:
            self.seen += 1
            if kind != "answer":
                continue
            if rid.startswith("@"):
                self.ephemeral.setdefault(rid[1:], []).append(at)
            elif rid and rid not in self.answers:
                self.answers[rid] = at

    def attribute(self, waiting: Sequence[Sent]) -> None:
        """Give each user's ephemeral answers to that user's unanswered requests, in send order."""
        for s in sorted(waiting, key=lambda s: s.t_send):
            times = self.ephemeral.get(s.shot.user)
            if times and s.shot.rid not in self.answers:
                self.answers[s.shot.rid] = times.pop(0)

    async def drain(self, sent: Sequence[Sent], limit_s: float, stall_s: float = 5.0) -> dict[str, float]:
        """Wait until every acknowledged request's answer arrived, or nothing new came for ``stall_s``."""
        pending = [s for s in sent if s.status == 200 and s.ack in ("empty", "placeholder")]
        waiting = {s.shot.rid for s in pending}
        deadline, last_progress, last_count = time.monotonic() + limit_s, time.monotonic(), -1
        while time.monotonic() < deadline:
            await self.poll()
            self.attribute(pending)
            count = sum(rid in self.answers for rid in waiting)
            if count == len(waiting):
                break
            if count != last_count:
                last_count, last_progress = count, time.monotonic()
            elif time.monotonic() - last_progress > stall_s:
                break
            await asyncio.sleep(0.5)
        return {rid: self.answers[rid] for rid in waiting if rid in self.answers}


async def quiesce(
    servers: Sequence[Server], limit_s: float = 60.0, idle_share: float = 0.05, window_s: float = 6.0
) -> float:
    """Wait until the bot processes are idle (under ``idle_share`` of a core over ``window_s``) or
    ``limit_s`` passed, so an open-loop phase does not start on the last phase's afterwork (lead
    notices still being delivered, misuse alerts): returns the seconds waited. The window is longer
    than the interval of notice delivery (5 s), so a backlog delivered a pass at a time is seen."""
    started = time.monotonic()
    samples = [(started, sum(cpu_seconds(pid) for s in servers for pid in s.pids))]
    while time.monotonic() - started < limit_s:
        await asyncio.sleep(0.5)
        samples.append((time.monotonic(), sum(cpu_seconds(pid) for s in servers for pid in s.pids)))
        while len(samples) > 2 and samples[-1][0] - samples[1][0] >= window_s:
            samples.pop(0)  # keep the newest samples that still span the window
        (t0, c0), (t1, c1) = samples[0], samples[-1]
        if t1 - t0 >= window_s and c1 - c0 < idle_share * (t1 - t0):
            break
    return time.monotonic() - started


async def phase(
    name: str,
    fake: FakeSlack,
    session: aiohttp.ClientSession,
    servers: Sequence[Server],
    shots: Iterator[Shot],
    *,
    closed: bool,
    seconds: float,
    connections: int,
    rate: float,
    drain_s: float,
    on_answer: bool = False,
    profile_to: Path | None = None,
) -> Phase:
    bases = [s.base for s in servers]
    cpu_before = sum(cpu_seconds(pid) for s in servers for pid in s.pids)
    started = time.monotonic()
    wait_url = f"{fake.base}/_wait" if on_answer else None
    spy = await profile.record(servers[0].pids[-1], seconds, profile_to) if profile_to is not None else None
    if closed:
        sent = await closed_loop(session, bases, shots, connections, seconds, wait_url)
    else:
        sent = await open_loop(session, bases, shots, rate, seconds)
    sending = time.monotonic() - started
    result = Phase(name, sent, started, sending)
    result.delivered = await fake.drain(sent, drain_s)
    result.cpu_s = sum(cpu_seconds(pid) for s in servers for pid in s.pids) - cpu_before
    if spy is not None:
        await spy.wait()
    return result


async def audited(url: str) -> list[tuple[str, str]]:
    """(Slack user, subject references) of every audit event of an enquiry (a lookup or a search)
    made from Slack; not of what followed it (a lead professional's notice has its own event)."""
    actions = ", ".join(f"'{action.value}'" for action in sorted(LOOKUP_ACTIONS))
    query = f"SELECT user_id, subject_refs FROM audit_events WHERE platform = 'slack' AND action IN ({actions})"
    db = await Database.open(url, migrate=False)
    try:
        async with db.read() as session:
            rows = await session.execute(text(query + " ORDER BY seq"))
            return [(str(user), str(refs or "")) for user, refs in rows]
    finally:
        await db.close()


def settle(phases: Sequence[Phase], events: Sequence[tuple[str, str]]) -> None:
    """Answered = delivered (to the fake Slack API or in the ack) and audited: a keyed enquiry needs
    an event by its asker naming its child, any other enquiry an event by its asker (each phase has
    askers of its own). Each event vouches for one request only."""
    by_ref: Counter[tuple[str, int]] = Counter()
    by_user: Counter[str] = Counter()
    for user, refs in events:
        by_user[user] += 1
        for ref in refs.split():
            if ref.isdigit():
                by_ref[(user, int(ref))] += 1
    for ph in phases:
        ph.answered = []
        for s in sorted(ph.sent, key=lambda s: s.t_send):
            if not (s.ack == "answer" or s.shot.rid in ph.delivered):
                continue
            if s.shot.ref is not None:
                key = (s.shot.user, s.shot.ref)
                if by_ref[key] > 0:
                    by_ref[key] -= 1
                    by_user[s.shot.user] -= 1
                    ph.answered.append(s)
            elif by_user[s.shot.user] > 0:
                by_user[s.shot.user] -= 1
                ph.answered.append(s)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


@dataclass
class Config:
    replicas: int
    phases: dict[str, Phase] = field(default_factory=dict)
    rss_mb: list[float] = field(default_factory=list)
    profile: list[tuple[str, float]] = field(default_factory=list)
    methods: dict[str, int] = field(default_factory=dict)
    in_ack: int = 0
    full_collections: list[tuple[int, int, float]] = field(default_factory=list)  # count, over 20 ms, seconds


async def measure_signpost(
    args: argparse.Namespace,
    index: int,
    replicas: int,
    fake: FakeSlack,
    session: aiohttp.ClientSession,
    env: dict[str, str],
    workdir: Path,
    shots: Shots,
    refs: Iterator[int],
    demographic: Iterator[str],
) -> Config:
    config = Config(replicas)
    base = index * 1000
    sample_to = workdir / f"profile-{index}.txt" if args.profile else None
    if args.workers:  # the replicas as one `signpost run --workers N` on one port (SO_REUSEPORT)
        port = free_port()
        run = ["-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port), "--workers", str(replicas)]
        servers = [await start(f"signpost-{index}", run, env, workdir, port)]
    else:
        servers = [
            await start(
                f"signpost-{index}-{n}",
                ["-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port)],
                env,
                workdir,
                port,
            )
            for n, port in ((n, free_port()) for n in range(replicas))
        ]
    methods_before = dict(fake.methods)
    async with servers_running(servers):

        def users(offset: int, count: int) -> list[int]:
            return [base + offset + i for i in range(count)]

        common = {"seconds": args.seconds, "connections": args.connections, "rate": args.rate, "drain_s": args.drain}
        await phase(
            "warm",
            fake,
            session,
            servers,
            shots.keyed(refs, users(WARM, 4)),
            closed=True,
            on_answer=True,
            **common | {"seconds": 2.0},
        )
        config.phases["flood"] = await phase(
            "flood",
            fake,
            session,
            servers,
            shots.keyed(refs, users(FLOOD, args.flood_connections)),
            closed=True,
            **common | {"connections": args.flood_connections},
        )
        config.phases["closed"] = await phase(
            "closed",
            fake,
            session,
            servers,
            shots.keyed(refs, users(CLOSED, args.connections)),
            closed=True,
            on_answer=True,
            profile_to=sample_to if args.profile_phase == "closed" else None,
            **common,
        )
        await quiesce(servers, window_s=args.quiet_window)
        config.phases["keyed"] = await phase(
            "keyed", fake, session, servers, shots.keyed(refs, users(OPEN_KEYED, 4)), closed=False, **common
        )
        await quiesce(servers, window_s=args.quiet_window)
        config.phases["demographic"] = await phase(
            "demographic",
            fake,
            session,
            servers,
            shots.demographic(demographic, users(OPEN_DEMOGRAPHIC, DEMOGRAPHIC_ASKERS)),
            closed=False,
            profile_to=sample_to if args.profile_phase == "demographic" else None,
            **common,
        )
        config.rss_mb = [rss_mb(pid) for s in servers for pid in s.pids[1 if args.workers and replicas > 1 else 0 :]]
        config.full_collections = [await full_collections(session, s) for s in servers]
        sampled = workdir / f"profile-{index}.txt"
        if args.profile and sampled.exists():
            config.profile = profile.breakdown(sampled.read_text())
        await fake.poll()
        config.methods = {
            k: v - methods_before.get(k, 0) for k, v in fake.methods.items() if v - methods_before.get(k, 0)
        }
        config.in_ack = sum(s.ack == "answer" for ph in config.phases.values() for s in ph.sent)
    return config


def askers(index: int, connections: int, flood: int) -> list[int]:
    base = index * 1000
    return [
        *(base + WARM + i for i in range(4)),
        *(base + CLOSED + i for i in range(connections)),
        *(base + OPEN_KEYED + i for i in range(4)),
        *(base + OPEN_DEMOGRAPHIC + i for i in range(DEMOGRAPHIC_ASKERS)),
        *(base + FLOOD + i for i in range(flood)),
    ]


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.machine()}, {os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Measured:
    """Everything one run measured, before it is put in a table."""

    register: Register
    ceiling: Phase
    configs: list[Config]
    load_before: str


async def run(args: argparse.Namespace) -> Measured:
    workdir = Path(tempfile.mkdtemp(prefix="signpost-e2e-"))
    postgres = args.backend == "postgres"
    url = await fresh_postgres(args.postgres) if postgres else f"sqlite+aiosqlite:///{workdir / 'signpost.db'}"
    load_before = loadavg()
    try:
        keys = KeyRing.load_or_create(workdir / "signpost.key")
        app = build(await Database.open(url), keys, SystemClock())
        now = datetime.now(UTC)
        register = await build_register(app, load_generator(args.generator), args.children, args.seed, now)
        print(
            f"register: {register.children:,} children, {register.involvements:,} involvements in "
            f"{register.generate_load_s:.1f} s",
            file=sys.stderr,
        )
        for index, _ in enumerate(args.replicas):
            await enrol_askers(app, askers(index, args.connections, args.flood_connections), now)
        await warm_term_keys(app, now)
        await app.close()

        env = base_env(workdir)
        fake_port, ceiling_port = free_port(), free_port()
        fake_server = await start(
            "fake-slack", ["-m", "benchmarks.e2e.fake_slack", "--port", str(fake_port)], env, workdir, fake_port
        )
        api_url = f"{fake_server.base}/api/"
        ceiling_server = await start(
            "ceiling",
            ["-m", "benchmarks.e2e.ceiling", "--port", str(ceiling_port), "--api-url", api_url],
            env,
            workdir,
            ceiling_port,
        )
        signpost_env = {
            **env,
            "SIGNPOST_DATABASE_URL": url,
            "SIGNPOST_KEY_FILE": str(workdir / "signpost.key"),
            "SIGNPOST_LOG_FORMAT": "json",
            "SIGNPOST_LOG_LEVEL": args.log_level,
            "SIGNPOST_SLACK_API_URL": api_url,
            "SIGNPOST_MIGRATE_ON_START": "0",  # migrated once above, as replicas are deployed
        }
        if args.max_in_flight is not None:
            signpost_env["SIGNPOST_MAX_IN_FLIGHT"] = str(args.max_in_flight)
        rids = iter(range(1, 1 << 62))
        shots = Shots(fake_server.base, rids)
        refs = cycle(register.refs)
        demographic = cycle(register.demographic)
        configs: list[Config] = []
        connector = aiohttp.TCPConnector(limit=0)
        async with (
            servers_running([fake_server, ceiling_server]),
            aiohttp.ClientSession(connector=connector) as session,
        ):
            fake = FakeSlack(fake_server.base, session)
            ceiling = await phase(
                "ceiling",
                fake,
                session,
                [ceiling_server],
                shots.keyed(refs, [CLOSED + i for i in range(args.connections)]),
                closed=True,
                seconds=args.seconds,
                connections=args.connections,
                rate=args.rate,
                drain_s=0,
            )
            for index, replicas in enumerate(args.replicas):
                configs.append(
                    await measure_signpost(
                        args, index, replicas, fake, session, signpost_env, workdir, shots, refs, demographic
                    )
                )
        settle([ph for c in configs for ph in c.phases.values()], await audited(url))
        for c in configs:
            for ph in c.phases.values():
                acks = Counter(s.ack for s in ph.sent)
                print(
                    f"{c.replicas} replica(s), {ph.name}: sent {len(ph.sent)}, acks {dict(acks)}, "
                    f"delivered {len(ph.delivered)}, answered {len(ph.answered)}, cpu {ph.cpu_s:.1f} s",
                    file=sys.stderr,
                )
    except BaseException:
        print(f"the processes' logs are kept in {workdir}", file=sys.stderr)
        raise
    else:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if postgres:
            await drop_postgres(args.postgres, url)
    return Measured(register, ceiling, configs, load_before)


def cycle(items: Sequence[int] | Sequence[str]) -> Iterator[Any]:
    while True:
        yield from items


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}/s"


def report(args: argparse.Namespace, measured: Measured) -> dict[str, object]:
    ceiling, configs = measured.ceiling, measured.configs
    children, involvements = measured.register.children, measured.register.involvements
    built_s, load_before = measured.register.generate_load_s, measured.load_before
    backend = "PostgreSQL" if args.backend == "postgres" else "SQLite"
    ceiling_rate = sum(s.ack == "answer" for s in ceiling.sent) / ceiling.sending_s
    ceiling_cpu = ceiling.cpu_s / max(1, len(ceiling.sent)) * 1000
    unit = "worker" if args.workers else "replica"
    columns = [f"{backend}, {c.replicas} {unit}{'s' if c.replicas > 1 else ''}" for c in configs]
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, values: Iterator[str] | list[str]) -> None:
        rows.append((name, list(values)))

    row(
        f"bare Bolt ceiling, {args.connections} connections (CPU a request)",
        [f"{fmt_rate(ceiling_rate)} ({ceiling_cpu:.2f} ms)" for _ in configs],
    )
    flood = [c.phases["flood"] for c in configs]
    closed = [c.phases["closed"] for c in configs]
    n = args.connections
    row(
        f"Slack requests acknowledged, {args.flood_connections} connections each sending on the ack "
        "(of which answered busy)",
        [
            f"{fmt_rate(sum(s.status == 200 for s in p.sent) / p.sending_s)} ({fmt_rate(p.busy() / p.sending_s)})"
            for p in flood
        ],
    )
    row(
        "… keyed enquiries of that flood answered (reply delivered, audit durable), incl. draining",
        [f"{fmt_rate(p.answered_per_s())} ({len(p.answered):,} of {len(p.sent):,} sent)" for p in flood],
    )
    row(
        f"keyed enquiries answered, {n} connections each waiting for its answer",
        [f"{fmt_rate(p.answered_per_s())} ({len(p.answered):,} of {len(p.sent):,} sent)" for p in closed],
    )
    row(
        "ratio answered / ceiling (the best of the two)",
        [
            f"{max(p.answered_per_s(), q.answered_per_s()) / ceiling_rate:.2f}"
            for p, q in zip(flood, closed, strict=True)
        ],
    )
    row(
        f"CPU per answered keyed enquiry, {n} waiting connections (all replicas)",
        [f"{p.cpu_s / len(p.answered) * 1000:.2f} ms" if p.answered else "-" for p in closed],
    )
    for name in ("keyed", "demographic"):
        values = []
        for c in configs:
            p = c.phases[name]
            lat = p.latencies_ms()
            values.append(
                f"{percentile(lat, 0.5):.0f} / {percentile(lat, 0.99):.0f} ms "
                f"({len(p.answered)} of {len(p.sent)} answered)"
            )
        row(f"{name}, {args.rate:g}/s offered (open loop): p50 / p99", values)
    row(
        f"CPU per answered search, {args.rate:g}/s offered (all replicas, incl. refusals and draining)",
        [
            f"{p.cpu_s / len(p.answered) * 1000:.2f} ms" if p.answered else "-"
            for p in (c.phases["demographic"] for c in configs)
        ],
    )
    row("bot process RSS after load", [" + ".join(f"{mb:.0f}" for mb in c.rss_mb) + " MB" for c in configs])
    row(
        "full cycle collections in the bot over the run (from /metrics): how many, how many held it over 20 ms, "
        "their total",
        [
            " + ".join(f"{n}, {slow} over 20 ms, {total * 1000:.0f} ms" for n, slow, total in c.full_collections)
            for c in configs
        ],
    )
    row(
        "Slack Web API calls (lead notices: conversations.open + chat.postMessage); answers in the ack",
        [
            ", ".join(f"{k} {v:,}" for k, v in sorted(c.methods.items()) if k != "auth.test")
            + f"; {c.in_ack:,} in the ack"
            for c in configs
        ],
    )
    if any(c.profile for c in configs):
        row(
            "where the bot's time goes (py-spy, GIL samples, first replica, "
            f"{'closed loop' if args.profile_phase == 'closed' else f'searches at {args.rate:g}/s'})",
            [", ".join(f"{label} {share:.0%}" for label, share in c.profile) or "-" for c in configs],
        )
    lines = [f"| measure ({children:,} children, one run) | " + " | ".join(columns) + " |"]
    lines.append("|---|" + "---|" * len(columns))
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    table = "\n".join(lines)
    built = (
        "Register built through the bulk path (store.register.children.insert_new, plain involvement inserts): "
        f"{children:,} children, {involvements:,} involvements in {built_s:.0f} s "
        f"({children / built_s:,.0f} children/s)"
    )
    return {
        "backend": backend,
        "children": children,
        "replicas": [c.replicas for c in configs],
        "table": table,
        "built": built,
        "machine": machine(),
        "load": f"{load_before} before, {loadavg()} after",
        "command": "python -m benchmarks.e2e " + " ".join(args.argv),
    }


def record(result: dict[str, object], readme: Path) -> None:
    """Put this run's table in the README's results section, replacing an earlier run of the same kind."""
    replicas = ",".join(str(r) for r in result["replicas"])  # type: ignore[attr-defined]
    heading = f"### {result['backend']}, {result['children']:,} children, replicas {replicas}"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = "\n".join(
        [
            heading,
            "",
            f"Measured {when} with `{result['command']}` on {result['machine']}; "
            f"load average (1/5/15 min) {result['load']}. {result['built']}.",
            "",
            str(result["table"]),
            "",
        ]
    )
    doc = readme.read_text()
    if START not in doc:
        doc = doc.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = doc.split(START, 1)
    body, tail = rest.split(END, 1)
    blocks = [b.strip("\n") for b in re.split(r"\n(?=### )", body.strip("\n")) if b.strip()]
    blocks = [b for b in blocks if b.splitlines()[0] != heading] + [block.strip("\n")]
    readme.write_text(head + START + "\n" + "\n\n".join(blocks) + "\n" + END + tail)


def parse_replicas(value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("e.g. 1 or 1,2") from None
    if not counts or any(n < 1 or n > 8 for n in counts):
        raise argparse.ArgumentTypeError("between 1 and 8 replicas")
    return counts


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--replicas", type=parse_replicas, default=[1], help="e.g. 1, 2 or 1,2 (one register)")
    parser.add_argument(
        "--workers", action="store_true", help="run N replicas as one `signpost run --workers N` on one port"
    )
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, metavar="URL", help="server for a fresh database")
    parser.add_argument("--generator", default="benchmarks.e2e.register:matching_identities", metavar="MOD:FUNC")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=10.0, help="each load phase")
    parser.add_argument("--connections", type=int, default=16, help="closed loop")
    parser.add_argument("--max-in-flight", type=int, help="SIGNPOST_MAX_IN_FLIGHT of each replica (default its own)")
    parser.add_argument(
        "--flood-connections",
        type=int,
        default=128,
        help="the flood: each sends on the ack; answers come in the ack, so it takes more connections than the "
        "in-flight bound (64 on 2 cores) to overload",
    )
    parser.add_argument("--rate", type=float, default=50.0, help="open loop, requests a second")
    parser.add_argument("--drain", type=float, default=180.0, help="longest wait for a phase's backlog")
    parser.add_argument(
        "--quiet-window",
        type=float,
        default=6.0,
        metavar="SECONDS",
        help="before each open-loop phase, wait until the bots were idle this long (longer than the 5 s between "
        "notice deliveries, so a backlog delivered a pass at a time is seen)",
    )
    parser.add_argument("--log-level", default="info", help="of the signpost processes")
    parser.add_argument("--no-readme", action="store_true", help="print only; leave benchmarks/README.md alone")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (database, logs, profile)")
    parser.add_argument("--profile", action="store_true", help="py-spy breakdown of the closed keyed phase")
    parser.add_argument(
        "--profile-phase", choices=("closed", "demographic"), default="closed", help="the phase --profile samples"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.flood_connections <= 1000 - FLOOD:
        parser.error(f"--flood-connections: 1 to {1000 - FLOOD} (each replica's askers are numbered within 1,000)")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    result = report(args, asyncio.run(run(args)))
    print(f"\n{result['built']}\n\n{result['table']}\n\nmachine: {result['machine']}; load {result['load']}")
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "table"}))
    if not args.no_readme:
        record(result, README)
    return 0
