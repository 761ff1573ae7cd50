"""Misuse detection: rules over the audit log that alert a practitioner's duty managers while it happens.

Rules run in two places. As events are written: the audit writer hands every committed batch to
``MisuseMonitor.after_commit`` on a separate task (so the next commit never waits for it), which
checks only the rules those events could have tripped, for only their actors, at most once per
``recheck`` per actor and rule. And in ``sweep(ctx, now)``, which the scheduler calls periodically:
every rule for every practitioner active lately, catching events written inside other commands'
transactions (step-up lockouts, access requests) and anything the live path skipped.

Each rule asks a few counts of the audit log through the (actor_id, at) index; none scans it.
An alert is raised at most once per rule and practitioner in the rule's window: while the last
alert of that rule about them is younger than the window, the rule is not counted again (a pattern
that straddles midnight is one episode, not two); once it is older, the rule's window holds only
events after it, so a new alert is about a new episode. Each alert claims a row keyed by the one
before it, so replicas racing to raise the same alert claim the same key and one wins. An alert is
a notice to the practitioner's duty managers (admins when the authority has none) and an audit
event of its own (action "alert"). Alerts describe counts and times only, never a child.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.grammar import UsageError, parse_demographic
from handlers.recipients import who_is_told
from handlers.vocabulary import (
    BAD_CHECK_DIGIT,
    LOOKUP_ACTIONS,
    NOT_ACTIVE_DETAIL,
    REACHED_OUTCOMES,
    Action,
    Actor,
    Notice,
    Origin,
    Outcome,
    is_origin,
    plural,
)
from store.audit import misuse, refusals
from store.audit.chain import utc
from store.audit.log import AuditRecord, TermSealer, append, origin_event
from store.keys.crypto import DecryptionError
from store.people import practitioners

log = structlog.get_logger("signpost.misuse")

NOTICE_KIND = "misuse_alert"
MONITOR = "misuse-monitor"  # who raised an alert: Signpost itself (origin SCHEDULER), live or in the sweep


@dataclass(frozen=True)
class MisusePolicy:
    """Thresholds for every rule; defaults sized so that a busy ordinary day stays silent."""

    recheck: timedelta = timedelta(seconds=30)  # live path: per actor and rule, at most this often
    sweep_lookback: timedelta = timedelta(hours=1)  # the sweep checks practitioners active this recently
    baseline_days: int = 28  # a practitioner's own history, for baselines and usual hours
    zone: str = "Europe/London"  # "usual hours" are local hours

    enumeration_window: timedelta = timedelta(hours=1)
    enumeration_ceiling: int = 25  # distinct children in the window: never alert at or below this
    enumeration_factor: float = 4.0  # … nor below this multiple of their own hourly baseline

    probing_window: timedelta = timedelta(minutes=30)
    probing_min: int = 8  # no-match or ambiguous results in the window
    probing_ratio: float = 0.6  # … that are at least this share of their lookups

    sweep_window: timedelta = timedelta(hours=2)
    sweep_run: int = 8  # consecutive name-and-date searches in order
    sweep_dob_step: timedelta = timedelta(days=62)  # dates of birth walked in steps no bigger than this

    out_of_area_window: timedelta = timedelta(hours=24)
    out_of_area_min: int = 5  # distinct children outside their authority, none of them theirs

    after_hours_window: timedelta = timedelta(hours=2)
    day_starts: time = time(7, 0)
    day_ends: time = time(19, 0)
    after_hours_min: int = 3  # lookups outside the day and outside their usual hours, of children not theirs
    usual_hour_days: int = 3  # an hour is usual for them if they worked in it on this many days
    # No usual hours (so no after-hours alert) until they have looked children up on this many days
    # of the baseline: a new practitioner's first evening, or a night worker's first nights, is no pattern.
    usual_hours_min_days: int = 5

    shielded_window: timedelta = timedelta(hours=24)
    shielded_min: int = 3  # distinct shielded records reached without an access request

    identity_window: timedelta = timedelta(hours=24)
    identity_min: int = 4  # texts refused for naming the child; 3 a child at most, so several children

    lockout_window: timedelta = timedelta(hours=24)
    lockout_min: int = 2  # step-up lockouts: ``code`` events audited with the outcome ``locked``
    platform_window: timedelta = timedelta(minutes=10)  # one identity on two platforms within this
    # A shared login's alert holds this long: a working day (07:00-19:00) of the account in Slack and
    # Teams is one alert, and the next morning's use of both is a new one.
    shared_login_hold: timedelta = timedelta(hours=12)

    leaver_window: timedelta = timedelta(hours=24)
    leaver_min: int = 1  # commands refused because the practitioner is recorded as having left

    reset_window: timedelta = timedelta(hours=24)
    reset_min: int = 3  # authenticator resets tried in chat (``totp_reset`` events), done or refused

    def window(self, rule: str) -> timedelta:
        return {
            "enumeration": self.enumeration_window,
            "probing": self.probing_window,
            "sweeps": self.sweep_window,
            "out_of_area": self.out_of_area_window,
            "after_hours": self.after_hours_window,
            "shielded_probing": self.shielded_window,
            "identity_guessing": self.identity_window,
            # The lockouts an alert was about are not counted again (and re-alerted) for the rest of the day.
            "lockouts": self.lockout_window,
            "shared_login": self.shared_login_hold,
            "leaver": self.leaver_window,
            "resets": self.reset_window,
        }[rule]

    def is_daytime(self, moment: datetime) -> bool:
        local = utc(moment).astimezone(ZoneInfo(self.zone)).time()
        return self.day_starts <= local < self.day_ends


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    actor_id: str
    summary: str  # counts and times only: never a child's identity


@dataclass(frozen=True, slots=True)
class Check:
    """What a rule gets: a read session, the practitioner concerned, the moment and the thresholds."""

    session: AsyncSession
    sealer: TermSealer
    policy: MisusePolicy
    actor: Actor
    now: datetime

    def since(self, window: timedelta) -> datetime:
        return self.now - window


Rule = Callable[[Check], Awaitable[str | None]]


# -- the rules ---------------------------------------------------------------------------------------


async def enumeration(c: Check) -> str | None:
    """Far more distinct children in an hour than both an absolute ceiling and their own baseline."""
    p, who = c.policy, c.actor.practitioner_id
    start = c.since(p.enumeration_window)
    current = await misuse.children_looked_up(c.session, who, start, c.now)
    if current <= p.enumeration_ceiling:
        return None
    history = await misuse.lookup_subjects(c.session, who, c.now - timedelta(days=p.baseline_days), start)
    per_hour: dict[datetime, set[int]] = {}
    for at, ref in history:
        per_hour.setdefault(utc(at).replace(minute=0, second=0, microsecond=0), set()).add(ref)
    baseline = sum(len(refs) for refs in per_hour.values()) / len(per_hour) if per_hour else 0.0
    if current <= p.enumeration_factor * baseline:
        return None
    minutes = int(p.enumeration_window.total_seconds() // 60)
    return (
        f"{plural(current, 'different child', 'different children')} looked up in the last "
        f"{plural(minutes, 'minute')}; "
        f"their usual is about {baseline:.0f} an hour"
    )


async def probing(c: Check) -> str | None:
    """A high rate of no-match and ambiguous results, or references failing their check digit: guessing."""
    p = c.policy
    counts = await misuse.outcomes(c.session, c.actor.practitioner_id, c.since(p.probing_window), c.now)
    failed = counts.get("no_match", 0) + counts.get("ambiguous", 0) + counts.get("invalid", 0)
    total = sum(counts.values())
    if failed < p.probing_min or failed < p.probing_ratio * total:
        return None
    minutes = int(p.probing_window.total_seconds() // 60)
    return (
        f"{failed:,} of {plural(total, 'lookup')} in the last {plural(minutes, 'minute')} "
        "found no single match (guessing?)"
    )


async def sweeps(c: Check) -> str | None:
    """Consecutive name-and-date searches walking alphabetically, or through dates of birth."""
    p = c.policy
    rows = await misuse.recent_searches(c.session, c.actor.practitioner_id, c.since(p.sweep_window), c.now, p.sweep_run)
    if len(rows) < p.sweep_run:
        return None
    names: list[tuple[str, str]] = []
    births: list[date] = []
    for sealed, key in rows:
        if sealed is None or key is None:
            return None
        try:
            text = await c.sealer.open(c.session, sealed, key)
            query = parse_demographic(text or "", c.now.date())
        except (DecryptionError, UsageError):
            return None
        names.append((query.family_name.casefold(), query.given_names.casefold()))
        assert query.date_of_birth is not None  # parse_demographic insists on one
        births.append(query.date_of_birth)
    if _strictly_monotone(names):
        return f"{_searches(len(rows))} walking alphabetically through names"
    steps = [abs((b - a).days) for a, b in pairwise(births)]
    if _strictly_monotone(births) and max(steps) <= p.sweep_dob_step.days:
        return f"{_searches(len(rows))} walking through dates of birth"
    return None


def _searches(count: int) -> str:
    return plural(count, "consecutive name-and-date search", "consecutive name-and-date searches")


def _strictly_monotone(values: Sequence[tuple[str, str]] | Sequence[date]) -> bool:
    pairs = list(pairwise(values))
    return all(a < b for a, b in pairs) or all(a > b for a, b in pairs)  # type: ignore[operator]


async def out_of_area(c: Check) -> str | None:
    """Repeated lookups of children outside their local authority that they have no involvement with."""
    p, la = c.policy, c.actor.local_authority
    count = await misuse.out_of_area_children(
        c.session, c.actor.practitioner_id, la, c.since(p.out_of_area_window), c.now
    )
    if count < p.out_of_area_min:
        return None
    hours = int(p.out_of_area_window.total_seconds() // 3600)
    return (
        f"{plural(count, 'child', 'children')} outside {la}, none with an involvement of theirs, "
        f"looked up in {plural(hours, 'hour')}"
    )


async def after_hours(c: Check) -> str | None:
    """Lookups of children not theirs, outside the working day, at hours this practitioner does not
    usually work.

    Lookups of children they are involved with are their own work at any hour, and do not count.
    Their usual hours are judged only from enough history: until they have looked children up on
    ``usual_hours_min_days`` days of the baseline, no hour is unusual for them (a new account is
    still guarded by the other rules)."""
    p, who = c.policy, c.actor.practitioner_id
    start = c.since(p.after_hours_window)
    recent = await misuse.lookup_times_not_their_own(c.session, who, start, c.now)
    outside = [t for t in recent if not p.is_daytime(t)]
    if len(outside) < p.after_hours_min:
        return None
    zone = ZoneInfo(p.zone)
    days_by_hour: dict[int, set[date]] = {}
    for t in await misuse.lookup_times(c.session, who, c.now - timedelta(days=p.baseline_days), start):
        local = utc(t).astimezone(zone)
        days_by_hour.setdefault(local.hour, set()).add(local.date())
    if len({day for days in days_by_hour.values() for day in days}) < p.usual_hours_min_days:
        return None  # too little history to say what their usual hours are
    usual = {hour for hour, days in days_by_hour.items() if len(days) >= p.usual_hour_days}
    unusual = sorted(utc(t).astimezone(zone) for t in outside if utc(t).astimezone(zone).hour not in usual)
    if len(unusual) < p.after_hours_min:
        return None
    when = _span(unusual[0], unusual[-1])
    return f"{plural(len(unusual), 'lookup')} {when} (UK time), outside their usual working hours"


def _span(first: datetime, last: datetime) -> str:
    """When lookups happened, to the minute: "between 23:10 and 23:40", or "within a minute at 03:38"
    when both ends fall in one minute ("between 03:38 and 03:38" reads as a mistake)."""
    start, end = f"{first:%H:%M}", f"{last:%H:%M}"
    return f"within a minute at {start}" if start == end else f"between {start} and {end}"


async def shielded_probing(c: Check) -> str | None:
    """Repeatedly reaching shielded records that are not theirs, with no access request or relay message."""
    p = c.policy
    count = await misuse.shielded_without_request(c.session, c.actor.practitioner_id, c.since(p.shielded_window), c.now)
    if count < p.shielded_min:
        return None
    hours = int(p.shielded_window.total_seconds() // 3600)
    return (
        f"{plural(count, 'shielded record')}, none with an involvement of theirs, reached in the last "
        f"{plural(hours, 'hour')} "
        "without an access request or a relay message"
    )


async def identity_guessing(c: Check) -> str | None:
    """Texts about children (purposes, reasons, messages) refused again and again for naming them.

    Each refusal answers a guess ("is this the child's name, date of birth, postcode, reference?"), so the
    screening allows ``handlers.access.screening.PER_DAY`` about one child a day; more than that in a
    day across children is someone testing what they know about several children."""
    p = c.policy
    texts, kids = await refusals.identity_refusals_since(
        c.session, c.actor.practitioner_id, c.since(p.identity_window), c.now + timedelta(microseconds=1)
    )
    if texts < p.identity_min:
        return None
    hours = int(p.identity_window.total_seconds() // 3600)
    return (
        f"{plural(texts, 'text')} about {plural(kids, 'child', 'children')} refused in the last "
        f"{plural(hours, 'hour')} for naming the child "
        "or giving their date of birth, postcode or reference"
    )


async def lockouts(c: Check) -> str | None:
    """Step-up lockouts again and again: someone guessing codes, or an authenticator gone astray."""
    p = c.policy
    count = await misuse.lockouts(c.session, c.actor.practitioner_id, c.since(p.lockout_window), c.now)
    if count < p.lockout_min:
        return None
    hours = int(p.lockout_window.total_seconds() // 3600)
    return f"{plural(count, 'step-up code lockout')} in the last {plural(hours, 'hour')}"


async def shared_login(c: Check) -> str | None:
    """One practitioner's identity used from two chat platforms at once: a login shared."""
    p, who = c.policy, c.actor.practitioner_id
    # Chat platforms only: the enrolment page, a batch match or the terminal is no second session;
    # nor is a chat account a duty manager has just linked to them, in its first window.
    used = await misuse.chat_platforms(c.session, who, c.since(p.platform_window), c.now, p.platform_window)
    if len(used) >= 2:
        minutes = int(p.platform_window.total_seconds() // 60)
        return f"their identity was used from {' and '.join(sorted(used))} within {plural(minutes, 'minute')}"
    return None


async def leaver(c: Check) -> str | None:
    """A chat account of a practitioner recorded as gone still in use: someone holds it."""
    p = c.policy
    used = await misuse.used_after_leaving(c.session, c.actor.practitioner_id, c.since(p.leaver_window), c.now)
    if used < p.leaver_min:
        return None
    hours = int(p.leaver_window.total_seconds() // 3600)
    return (
        f"{plural(used, 'command')} in the last {plural(hours, 'hour')} from an account of theirs after they "
        "were recorded as "
        "having left (each refused); a chat account of theirs may need unlinking"
    )


async def resets(c: Check) -> str | None:
    """Authenticator resets tried in chat again and again, done or refused: a duty manager resetting
    on anyone's word, or someone trying whose authenticator they can reset. ``reset`` writes, so its
    event is audited in its own transaction (not the live path): the sweep finds them, as lockouts."""
    p = c.policy
    count = await misuse.resets(c.session, c.actor.practitioner_id, c.since(p.reset_window), c.now)
    if count < p.reset_min:
        return None
    hours = int(p.reset_window.total_seconds() // 3600)
    return f"{plural(count, 'authenticator reset')} tried in chat in the last {plural(hours, 'hour')}, done or refused"


RULES: dict[str, Rule] = {
    "enumeration": enumeration,
    "probing": probing,
    "sweeps": sweeps,
    "out_of_area": out_of_area,
    "after_hours": after_hours,
    "shielded_probing": shielded_probing,
    "identity_guessing": identity_guessing,
    "lockouts": lockouts,
    "shared_login": shared_login,
    "leaver": leaver,
    "resets": resets,
}


def rules_tripped_by(record: AuditRecord, policy: MisusePolicy) -> set[str]:
    """The rules one new event could have tripped (the live path checks only these)."""
    if record.actor_id is None or is_origin(record.platform):
        return set()  # the rules are about chat sessions: an origin event (page, batch, terminal) is none
    rules = {"lockouts", "shared_login"}
    if record.outcome == Outcome.REFUSED and record.detail == NOT_ACTIVE_DETAIL:
        rules.add("leaver")
    if record.detail.startswith(refusals.IDENTITY_REFUSED):  # when it reaches the live path at all
        rules.add("identity_guessing")
    # A challenged lookup has not reached the register yet: checking on it would mark the rules
    # checked and let the resumed lookup, seconds later, fall inside ``recheck`` unchecked.
    if record.action == Action.LOOKUP and record.outcome == Outcome.INVALID and record.detail == BAD_CHECK_DIGIT:
        rules.add("probing")  # a guessed reference: it reached nothing, but guessing is probing
    if record.action in LOOKUP_ACTIONS and record.outcome in REACHED_OUTCOMES:
        rules |= {"enumeration", "out_of_area"}
        if not policy.is_daytime(record.at):
            rules.add("after_hours")
        if record.outcome in (Outcome.NO_MATCH, Outcome.AMBIGUOUS):
            rules.add("probing")
        if record.outcome == Outcome.SHIELDED:
            rules.add("shielded_probing")
        if record.action == Action.SEARCH:
            rules.add("sweeps")
    return rules


# -- evaluation and alerts -----------------------------------------------------------------------------


async def evaluate(
    ctx: Context,
    policy: MisusePolicy,
    actor_id: str,
    rules: Iterable[str],
    now: datetime,
    known: dict[tuple[str, str], datetime] | None = None,
) -> list[Finding]:
    """Run the named rules for one practitioner and raise an alert for each that fires, unless the
    same rule's last alert about them is younger than its window (``covered``).

    A covered rule's counts are skipped. When each rule last fired is asked of the database (any
    replica's alerts), or, given ``known``, taken from that map of (practitioner, rule) to the
    latest alert seen (alerts are never withdrawn), which this keeps up to date: the live path
    asks nothing more of the database when no alert was raised.
    """
    rules = list(rules)
    async with ctx.db.read() as session:
        if known is None:
            last = {rule: r.raised_at for rule, r in (await last_raised(session, actor_id, rules)).items()}
        else:
            last = {rule: known[(actor_id, rule)] for rule in rules if (actor_id, rule) in known}
        due = [rule for rule in rules if not covered(policy, rule, last.get(rule), now)]
        if not due:
            return []
        actor = await practitioners.get_actor(session, actor_id)
        if actor is None:
            return []
        check = Check(session, ctx.sealer, policy, actor, now)
        findings = []
        for rule in due:
            summary = await RULES[rule](check)
            if summary is not None:
                findings.append(Finding(rule, actor_id, summary))
    alerted = []
    for finding in findings:
        raised, latest = await raise_alert(ctx, policy, actor, finding, now)
        if raised:
            alerted.append(finding)
        if known is not None:
            known[(actor_id, finding.rule)] = latest  # ours now, or another's that covers it
    return alerted


# A rule's former name: alerts stored under it before the rule was renamed or split.
FORMERLY = {"lockouts": "credential"}


async def last_raised(session: AsyncSession, actor_id: str, rules: Iterable[str]) -> dict[str, misuse.Raised]:
    """Per rule, the latest alert about this practitioner, counting alerts under its former name.

    ``credential`` was step-up lockouts and a shared login together, one claim for both, so an
    alert about either hid the other. A store upgraded mid-episode still holds such alerts: one
    holds ``lockouts`` for its window as it did (the same lockouts are not alerted twice), but never
    ``shared_login``: a shared login is alerted, at worst once more than before, never hidden.
    """
    rules = list(rules)
    found = await misuse.last_raised(session, actor_id, {*rules, *(FORMERLY[r] for r in rules if r in FORMERLY)})
    latest: dict[str, misuse.Raised] = {}
    for rule in rules:
        seen = [r for r in (found.get(rule), found.get(FORMERLY.get(rule, ""))) if r is not None]
        if seen:
            latest[rule] = max(seen, key=lambda r: r.raised_at)
    return latest


def covered(policy: MisusePolicy, rule: str, last: datetime | None, now: datetime) -> bool:
    """True while the rule's last alert about this practitioner (at ``last``) is within its window
    of ``now``: the events the rule would count overlap the ones that alert was about."""
    return last is not None and utc(last) >= utc(now) - policy.window(rule)


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def alert_text(actor: Actor, finding: Finding) -> str:
    """The duty manager's notice: who (id, role, organisation), which rule, the counts. No child, no name."""
    return (
        f"Signpost misuse alert ({finding.rule.replace('_', ' ')}): practitioner {actor.practitioner_id} "
        f"({actor.role}, {actor.organisation}) — {finding.summary}. Please check this is expected. "
        f"The details are in the audit log (signpost audit export --actor {actor.practitioner_id})."
    )


def alert_key(rule: str, actor_id: str, previous: misuse.Raised | None) -> str:
    """The claim that makes an alert once per episode: the successor of this rule's last alert about
    the practitioner, so every replica raising the same alert claims the same key."""
    after = previous.dedupe_key if previous else ""
    return "misuse:" + _digest(f"{rule}|{actor_id}|after|{after}", 40)


def copy_key(key: str, recipient_id: str) -> str:
    """The dedupe key of one recipient's copy of the alert claimed as ``key`` (also the key a
    stand-in told in a recipient's place is given: handlers/stand_in.py)."""
    return f"{key}:{_digest(recipient_id, 16)}"


_COPY_KEY = re.compile(r"(?P<alert>misuse:[0-9a-f]{40}):[0-9a-f]{16}")


def alert_of(notice: Notice) -> str | None:
    """The claim key of the alert ``notice`` is one recipient's copy of (``copy_key`` read back), or
    None for any other notice."""
    found = _COPY_KEY.fullmatch(notice.dedupe_key or "") if notice.kind == NOTICE_KIND else None
    return found["alert"] if found is not None else None


async def raise_alert(
    ctx: Context, policy: MisusePolicy, actor: Actor, finding: Finding, now: datetime
) -> tuple[bool, datetime]:
    """Notify the duty managers and audit the alert, unless an alert of this rule about them is
    still within its window. Returns whether this raised it, and when the alert covering the rule
    now was raised (this one, or another replica's)."""
    rule, who = finding.rule, finding.actor_id
    async with ctx.db.write() as session:
        previous = (await last_raised(session, who, [rule])).get(rule)
        if previous is not None and covered(policy, rule, previous.raised_at, now):
            return False, previous.raised_at
        key = alert_key(rule, who, previous)
        if not await misuse.claim(session, key, rule, who, now):  # another replica, just now
            other = (await last_raised(session, who, [rule])).get(rule)
            return False, other.raised_at if other else utc(now)
        recipients = await who_is_told(
            session, ctx.reaches, actor.local_authority, kind=NOTICE_KIND, excluding=(actor.practitioner_id,)
        )
        text = alert_text(actor, finding)
        notices = [Notice(r, NOTICE_KIND, text, dedupe_key=copy_key(key, r)) for r in recipients]
        await ctx.notices.enqueue(session, notices, now)
        await append(session, [_alert_record(finding, len(recipients), now)])
    log.warning("misuse_alert", rule=rule, actor_id=who, recipients=len(recipients))
    return True, utc(now)


def _alert_record(finding: Finding, recipients: int, now: datetime) -> AuditRecord:
    detail = f"{finding.rule}: {finding.actor_id}"
    return origin_event(Origin.SCHEDULER, Action.ALERT, now, who=MONITOR, result_count=recipients, detail=detail)


@dataclass
class MisuseMonitor:
    """The live path: hears each committed audit batch and checks the rules it could have tripped."""

    ctx: Context
    policy: MisusePolicy = field(default_factory=MisusePolicy)
    _checked: dict[tuple[str, str], datetime] = field(default_factory=dict)
    # (practitioner, rule): the latest alert seen, whoever raised it; a rule it covers is not counted
    _raised: dict[tuple[str, str], datetime] = field(default_factory=dict)

    async def after_commit(self, records: Sequence[AuditRecord]) -> None:
        if len(self._raised) > 50_000:  # mostly old alerts: forgetting one costs a read, not an alert
            self._raised.clear()
        due = self._due(records)
        if not due:
            return
        # One read bounds every rule's count for the batch's actors, over every actor's windows.
        moments = [now for _, now in due.values()]
        async with self.ctx.db.read() as session:
            bounds = await misuse.sweep_counts(
                session, sweep_starts(self.policy, min(moments)), max(moments), list(due)
            )
        none = misuse.SweepCounts(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        for actor_id, (rules, now) in due.items():
            counts = bounds.get(actor_id, none)
            possible = [rule for rule in RULES if rule in rules and could_fire(rule, counts, self.policy)]
            if possible:
                await evaluate(self.ctx, self.policy, actor_id, possible, now, self._raised)

    def _due(self, records: Sequence[AuditRecord]) -> dict[str, tuple[set[str], datetime]]:
        """Per actor: the rules their new events could trip (not checked within ``recheck``), and as of when.

        Time is the events' own, not the clock's at the moment this runs, so a check never looks
        past events still being written, nor skips them as already checked.
        """
        due: dict[str, tuple[set[str], datetime]] = {}
        for record in sorted(records, key=lambda r: utc(r.at)):
            at = utc(record.at)
            for rule in rules_tripped_by(record, self.policy):
                assert record.actor_id is not None
                last = self._checked.get((record.actor_id, rule))
                if last is None or at - last >= self.policy.recheck or at < last:
                    rules, _ = due.get(record.actor_id, (set(), at))
                    due[record.actor_id] = (rules | {rule}, at)
                    self._checked[(record.actor_id, rule)] = at
        if len(self._checked) > 50_000:  # forget actors who have gone quiet
            newest = max(self._checked.values())
            self._checked = {k: v for k, v in self._checked.items() if newest - v < self.policy.recheck}
        return due


async def sweep(ctx: Context, now: datetime, policy: MisusePolicy | None = None) -> list[Finding]:
    """For the scheduler: every rule for every practitioner active lately; returns the alerts raised."""
    policy = policy or MisusePolicy()
    async with ctx.db.read() as session:
        actors = await misuse.sweep_counts(session, sweep_starts(policy, now), now)
    raised: list[Finding] = []
    for actor_id, counts in actors.items():
        rules = [rule for rule in RULES if could_fire(rule, counts, policy)]
        if rules:
            raised += await evaluate(ctx, policy, actor_id, rules, now)
    return raised


def sweep_starts(policy: MisusePolicy, now: datetime) -> misuse.SweepStarts:
    """Each bound's window, ending at ``now``: the rule's own."""
    return misuse.SweepStarts(
        active=now - policy.sweep_lookback,
        failed=now - policy.probing_window,
        searches=now - policy.sweep_window,
        lookups=now - policy.after_hours_window,
        shielded=now - policy.shielded_window,
        lockouts=now - policy.lockout_window,
        platforms=now - policy.platform_window,
        children=now - policy.enumeration_window,
        out_of_area=now - policy.out_of_area_window,
        refused=now - policy.identity_window,
        gone=now - policy.leaver_window,
        resets=now - policy.reset_window,
    )


def could_fire(rule: str, counts: misuse.SweepCounts, policy: MisusePolicy) -> bool:
    """False only when the rule cannot fire: the events it counts are fewer than it needs.

    Each bound counts the rule's own events over the rule's own window, so it is never below what
    the rule counts; a rule counting distinct children is bounded by the children its events
    name, each counted once an event (an ordinary practitioner's lookup costs no rule a read).
    """
    p = policy
    match rule:
        case "probing":
            return counts.failed >= p.probing_min
        case "sweeps":
            return counts.searches >= p.sweep_run
        case "after_hours":
            return counts.lookups >= p.after_hours_min
        case "shielded_probing":
            return counts.shielded > 0 or p.shielded_min <= 0
        case "lockouts":
            return counts.lockouts >= p.lockout_min
        case "shared_login":
            return counts.platforms >= 2
        case "enumeration":
            return counts.children > p.enumeration_ceiling
        case "out_of_area":
            return counts.out_of_area >= p.out_of_area_min
        case "identity_guessing":
            return counts.refused >= p.identity_min
        case "leaver":
            return counts.gone >= p.leaver_min
        case "resets":
            return counts.resets >= p.reset_min
    return True
