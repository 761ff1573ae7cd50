"""Hostile Teams activities to /api/messages with a bot registration configured.

Forged tokens (alg=none, HS256 keyed with the public key, another key, unknown kid, wrong audience
or issuer, expired, garbage) are 401 and change nothing. With a valid token: hostile command texts
are answered once and audited once; malformed activities are 4xx with none of their values in a
log line; other channels and tenants are refused; a serviceUrl other than the signed one never gets
the bot's outbound token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import Signpost
from bot.teams.front import MAX_ACTIVITY, SENT_PRIVATELY, UNANSWERABLE
from store.tables.audit import AuditEvent
from tests.bot.teams.teams_support import DANA, PRIYA, TeamsApp, TeamsUser, message
from tests.bot.teams.teams_tokens import CLIENT_ID, ISSUER, Signer
from tests.fakes.teams_connector import FakeConnector
from tests.hostile import strategies as hs
from tests.hostile.observe import ACCEPTED_WRONGLY, CRASHED, UNANSWERED, UNAUDITED, Check, LogTap, shown
from tests.spread import either_store, spread


def no_nul(text: str) -> bool:
    return "\x00" not in text


CHILD = "Amy Jones 03/04/2014 M1 2AB"  # pasted into fields, to show no activity value is logged
OTHER_TENANT = "0f0f0f0f-1111-2222-3333-444444444444"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(service_url: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "serviceurl": service_url,
        "nbf": now - 60,
        "iat": now - 60,
        "exp": now + 3600,
        **overrides,
    }


def _unsigned(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(sign(head.encode()))


def forged_token(how: str, signer: Signer, service_url: str, junk: str) -> str:
    """A token the Bot Framework did not issue (or no longer stands behind)."""
    claims = _claims(service_url)
    if how == "alg-none":
        return _unsigned({"alg": "none", "typ": "JWT", "kid": signer.kid}, claims, lambda _: b"")
    if how == "hs256-public-key":
        pem = signer.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return _unsigned(
            {"alg": "HS256", "typ": "JWT", "kid": signer.kid},
            claims,
            lambda m: hmac.new(pem, m, hashlib.sha256).digest(),
        )
    if how == "another-key":
        return Signer(signer.kid).token(service_url)
    if how == "unknown-kid":
        return jwt.encode(claims, signer.key, algorithm="RS256", headers={"kid": "kid-" + junk})
    if how == "wrong-audience":
        return signer.token(service_url, aud=junk or "another-bot")
    if how == "wrong-issuer":
        return signer.token(service_url, iss="https://issuer.example/" + junk)
    if how == "expired":
        return signer.token(service_url, exp=int(time.time()) - 600, nbf=1_000_000_000, iat=1_000_000_000)
    if how == "not-yet-valid":
        return signer.token(service_url, nbf=int(time.time()) + 3600, iat=int(time.time()) + 3600)
    if how == "tampered-claims":
        head, _, sig = signer.token(service_url).rpartition(".")
        header = head.split(".")[0]
        return f"{header}.{_b64(json.dumps({**claims, 'aud': CLIENT_ID, 'extra': junk}).encode())}.{sig}"
    return junk  # garbage


FORGERIES = (
    "alg-none",
    "hs256-public-key",
    "another-key",
    "unknown-kid",
    "wrong-audience",
    "wrong-issuer",
    "expired",
    "not-yet-valid",
    "tampered-claims",
    "garbage",
)


async def teams_seq(signpost: Signpost) -> int:
    async with signpost.ctx.db.read() as session:
        return int((await session.execute(select(func.coalesce(func.max(AuditEvent.seq), 0)))).scalar_one())


async def teams_events_since(signpost: Signpost, seq: int) -> list[AuditEvent]:
    async with signpost.ctx.db.read() as session:
        stmt = select(AuditEvent).where(AuditEvent.seq > seq, AuditEvent.platform == "teams").order_by(AuditEvent.seq)
        return list((await session.execute(stmt)).scalars())


async def post(
    app: TeamsApp, signpost: Signpost, connector: FakeConnector, logs: LogTap, activity: Any, token: str | None
) -> tuple[int, list[AuditEvent], list[Any], str]:
    status, events, sent, log, _ = await post_sized(app, signpost, connector, logs, activity, token)
    return status, events, sent, log


async def post_sized(
    app: TeamsApp, signpost: Signpost, connector: FakeConnector, logs: LogTap, activity: Any, token: str | None
) -> tuple[int, list[AuditEvent], list[Any], str, int]:
    seq, mark = await teams_seq(signpost), len(connector.sent)
    logs.new()
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = json.dumps(activity).encode()
    response = await app.client.post(
        "/api/messages", data=body, headers={**headers, "Content-Type": "application/json"}
    )
    await response.read()
    return response.status, await teams_events_since(signpost, seq), connector.sent[mark:], logs.new(), len(body)


def refused(
    check: Check,
    status: int,
    allowed: set[int],
    events: list[AuditEvent],
    sent: list[Any],
    log: str,
    *,
    audited_ok: bool = False,
) -> None:
    check.status(status, allowed, "an activity that must be refused")
    check.expect(not sent, ACCEPTED_WRONGLY, f"{len(sent)} calls to the connector")
    if not audited_ok:
        check.expect(not events, ACCEPTED_WRONGLY, f"{[(e.action, e.outcome) for e in events]} audited")
    else:
        check.expect(
            all(e.outcome == "refused" for e in events), ACCEPTED_WRONGLY, f"{[(e.action, e.outcome) for e in events]}"
        )
    check.logs(log)


@either_store  # refused on its token, before the store: one store shows it (tests/spread.py)
@given(
    how=st.sampled_from(FORGERIES),
    junk=st.text(hs.ALPHABET, max_size=40).map(lambda t: t.encode("utf-8", "ignore").decode("latin-1")),
    user=st.sampled_from((PRIYA, DANA)),
    text=hs.hostile_text,
)
async def test_forged_tokens_are_401_and_change_nothing(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    how: str,
    junk: str,
    user: TeamsUser,
    text: str,
) -> None:
    token = forged_token(how, signer, connector.url, junk)
    token = "".join(ch for ch in token if 0x20 < ord(ch) < 0x7F)  # what an HTTP header can carry
    check = Check("teams-forged-token", shown((how, token[:60], text)))
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, message(user, text, connector.url), token or None
    )
    refused(check, status, {401}, events, sent, log)
    check.settle()


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@given(user=st.sampled_from((PRIYA, DANA)), text=st.one_of(hs.hostile_text, hs.long_text()))
async def test_hostile_texts_with_a_valid_token_are_answered_and_audited_exactly_once(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    user: TeamsUser,
    text: str,
) -> None:
    check = Check("teams-command", shown((user.aad, text)))
    status, events, sent, log, size = await post_sized(
        teams_secured, loaded, connector, logs, message(user, text, connector.url), signer.token(connector.url)
    )
    if (
        status == 413 and size > MAX_ACTIVITY
    ):  # over the Teams bound (256 KiB; Teams' own cap is ~28 KB): refused unread
        refused(check, status, {413}, events, sent, log)
        check.settle()
        return
    check.status(status, {200, 201, 202}, "a signed message", otherwise=UNANSWERED)
    replies = [s for s in sent if s.conversation_id == user.personal_conversation]
    check.expect(len(replies) == 1, UNANSWERED, f"{len(replies)} replies")
    own = [e for e in events if e.user_id == user.aad]
    check.expect(len(own) == 1, UNAUDITED, f"{len(own)} audit events")
    check.expect(not any(e.outcome == "failed" for e in own), CRASHED, "answered 'something went wrong'")
    check.logs(log)
    check.outbound([s.body for s in sent], own_text=text)
    check.settle()


@example(user=PRIYA, text="request 999 000 0050 section 47 enquiry \ud800")
@example(user=DANA, text="deny 1 please ask the lead\udfff professional")
@example(user=DANA, text="\x0chelp")  # str.strip() took these controls for spaces: read as help and home
@example(user=PRIYA, text="Home 3d\x0b")
@example(user=PRIYA, text="\x1crelay 1\x85")
@given(user=st.sampled_from((PRIYA, DANA)), text=hs.hidden_command(hs.HIDDEN + hs.LONE_SURROGATES))
async def test_a_hidden_character_or_lone_surrogate_in_a_teams_message_gets_usage_help(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    user: TeamsUser,
    text: str,
) -> None:
    """JSON carries what a form cannot: a lone surrogate (``\\ud800``) decodes to half a character,
    which no database or log line can encode (an access request's purpose holding one answered
    "something went wrong"). Like any hidden character it makes the text usage help, unread."""
    check = Check("teams-command-hidden", shown((user.aad, text)))
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, message(user, text, connector.url), signer.token(connector.url)
    )
    check.status(status, {200, 201, 202}, "a signed message", otherwise=UNANSWERED)
    replies = [s for s in sent if s.conversation_id == user.personal_conversation]
    check.expect(len(replies) == 1, UNANSWERED, f"{len(replies)} replies")
    own = [(e.action, e.outcome) for e in events if e.user_id == user.aad]
    check.expect(len(own) == 1, UNAUDITED, f"{len(own)} audit events")
    check.expect(own == [("usage", "invalid")], ACCEPTED_WRONGLY, f"{own}")
    check.logs(log)
    check.outbound([s.body for s in sent], own_text=text)
    check.settle()


def _mutations() -> st.SearchStrategy[tuple[str, Any]]:
    value = st.one_of(st.just(CHILD), st.just([CHILD]), st.just({"x": CHILD}), hs.json_junk, st.integers(), st.none())
    field = st.sampled_from(
        (
            "text",
            "from",
            "type",
            "timestamp",
            "attachments",
            "conversation",
            "channelData",
            "recipient",
            "entities",
            "value",
            "serviceUrl",
            "id",
            "locale",
            "name",
            "replyToId",
        )
    )
    return st.tuples(field, value)


# Found by a fuzz run (--hypothesis-seed=7): without text, the activity passed the check and its
# turn failed with a traceback. A recipient with no id failed copying it (a ValidationError); an id
# or replyToId holding a "/" was put into the connector's URL as it was, which answered 404 for a
# path it does not have (a ClientResponseError, and the SDK's log line quoting the id).
@example(user=PRIYA, changes=[("text", None), ("recipient", {"x": CHILD})], drop=[])
@example(user=PRIYA, changes=[("text", None), ("id", CHILD)], drop=[])
@example(user=DANA, changes=[("text", None), ("value", {"x": CHILD}), ("replyToId", CHILD)], drop=[])
@given(
    user=st.sampled_from((PRIYA, DANA)),
    changes=st.lists(_mutations(), min_size=1, max_size=4),
    drop=st.lists(st.sampled_from(("from", "conversation", "type", "recipient", "channelId")), max_size=2),
)
async def test_malformed_activities_with_a_valid_token_are_4xx_with_no_value_logged(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    user: TeamsUser,
    changes: list[tuple[str, Any]],
    drop: list[str],
) -> None:
    """Wrong types and missing fields, carrying a child's identity: 4xx with nothing sent, never 5xx,
    never a value in a log line; if the SDK still takes the activity (extra or odd optional fields),
    it is answered at most once and the answer carries none of those values."""
    activity: dict[str, Any] = message(user, "help", connector.url)
    for key, value in changes:
        activity[key] = value
    for key in drop:
        activity.pop(key, None)
    if all(isinstance(activity.get(k), str) for k in ("text", "type")) and isinstance(activity.get("from"), dict):
        activity["timestamp"] = CHILD  # keep it malformed
    check = Check("teams-malformed-activity", shown(activity, 240))
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, activity, signer.token(connector.url)
    )
    if status in (200, 201, 202):
        # The SDK took it (a signed activity from a linked user on msteams in our tenant, with odd
        # extra fields): at most one answer, and that answer carries no identity from the fields.
        check.expect(len(sent) <= 1, UNANSWERED, f"{len(sent)} calls to the connector")
        check.logs(log)
        check.outbound([s.body for s in sent])
    else:
        refused(check, status, set(range(400, 500)), events, sent, log, audited_ok=True)
    check.settle()


# Fields inside the accounts and the conversation (the property above replaces whole fields): the
# class of a recipient with no id, an id with a "/" in it, a NUL in an AAD object id.
_INNER = (
    ("from", "id"),
    ("from", "aadObjectId"),
    ("from", "name"),
    ("from", "role"),
    ("recipient", "id"),
    ("recipient", "name"),
    ("conversation", "id"),
    ("conversation", "tenantId"),
    ("conversation", "conversationType"),
    ("conversation", "isGroup"),
    ("channelData", "tenant"),
)
_ODD_IDS = ("", " ", "/", "a/b", "..", ".", "%2F", "?x=1", "#top", "\\", "a\x00b", "\u202e", CHILD)


@given(
    user=st.sampled_from((PRIYA, DANA)),
    changes=st.lists(
        st.tuples(
            st.sampled_from(_INNER),
            st.one_of(
                st.sampled_from(_ODD_IDS),
                st.just({"x": CHILD}),
                st.just([CHILD]),
                st.integers(),
                st.none(),
                hs.json_junk,
            ),
            st.booleans(),  # True: the key is removed instead
        ),
        min_size=1,
        max_size=3,
    ),
)
async def test_odd_inner_fields_with_a_valid_token_are_refused_or_answered_once(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    user: TeamsUser,
    changes: list[tuple[tuple[str, str], Any, bool]],
) -> None:
    """A well-formed "help" whose accounts or conversation carry odd ids, wrong types or missing
    keys: refused 4xx, or answered at most once and audited at most once; never a 5xx, a
    traceback, or a value in a log line or an answer."""
    activity: dict[str, Any] = message(user, "help", connector.url)
    for (outer, inner), value, remove in changes:
        part = activity.get(outer)
        part = dict(part) if isinstance(part, dict) else {}
        if remove:
            part.pop(inner, None)
        else:
            part[inner] = value
        activity[outer] = part
    check = Check("teams-inner-fields", shown(activity, 400))
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, activity, signer.token(connector.url)
    )
    if status in (200, 201, 202):
        # Outside a 1:1 chat (a conversation type other than "personal", or none) the answer goes
        # to the person's 1:1 chat and the conversation is told so: that pointer is no answer.
        # Opening that 1:1 chat (POST /v3/conversations) is no answer either: only activities are.
        answers = [x for x in sent if "/activities" in x.path and SENT_PRIVATELY not in json.dumps(x.body)]
        check.expect(len(answers) <= 1, UNANSWERED, f"{len(answers)} answers sent to the connector")
        check.expect(len(events) <= 1, UNAUDITED, f"{len(events)} audit events")
        check.logs(log)
        check.outbound([s.body for s in sent])
    else:
        refused(check, status, set(range(400, 500)), events, sent, log, audited_ok=True)
    check.settle()


@given(
    user=st.sampled_from((PRIYA, DANA)),
    channel=st.one_of(
        st.sampled_from(("webchat", "directline", "emulator", "slack", "MSTEAMS", "msteams ", "")),
        st.text(hs.ALPHABET, max_size=12).filter(no_nul),
    ),
    tenant=st.one_of(st.just(None), st.just(OTHER_TENANT), st.text(hs.ALPHABET, max_size=36).filter(no_nul)),
    text=st.sampled_from(("history", "help", "pending", "register P003", "9990000018")),
)
async def test_other_channels_and_tenants_are_refused(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    user: TeamsUser,
    channel: str,
    tenant: str | None,
    text: str,
) -> None:
    """A practitioner's AAD id from another channel or tenant gets nothing (defect 5, fixed)."""
    await refuse_other(teams_secured, connector, signer, loaded, logs, user, channel, tenant, text)


async def refuse_other(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    user: TeamsUser,
    channel: str,
    tenant: str | None,
    text: str,
) -> None:
    activity = message(user, text, connector.url)
    if tenant is None or channel != "msteams":
        activity["channelId"] = channel if channel != "msteams" else "webchat"
    if tenant is not None:
        activity["conversation"]["tenantId"] = tenant
        activity["channelData"] = {"tenant": {"id": tenant}}
    check = Check("teams-other-channel-or-tenant", shown((activity["channelId"], tenant, text)))
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, activity, signer.token(connector.url)
    )
    refused(check, status, set(range(400, 500)), events, sent, log, audited_ok=True)
    check.settle()


# -- found by this suite (PostgreSQL only): a NUL in a refused tenant id broke the refusal's audit ----


@given(
    user=st.sampled_from((PRIYA, DANA)),
    channel=st.sampled_from(("webchat", "directline", "msteams")),
    tenant=st.tuples(st.text(hs.ALPHABET, max_size=8), st.text(hs.ALPHABET, max_size=8)).map("\x00".join),
    text=st.sampled_from(("history", "pending", "register P003")),
)
async def test_tenant_ids_with_a_nul_character_are_refused_without_a_5xx(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    user: TeamsUser,
    channel: str,
    tenant: str,
    text: str,
) -> None:
    """PostgreSQL refuses NUL in text: auditing the refusal of such a tenant answered 500 with a traceback."""
    await refuse_other(teams_secured, connector, signer, loaded, logs, user, channel, tenant, text)


@either_store  # refused on its token, before the store: one store shows it (tests/spread.py)
@given(
    port=st.integers(1, 65535),
    scheme=st.sampled_from(("http", "https")),
    host=st.sampled_from(("127.0.0.1", "localhost", "127.0.0.2")),
    path=st.sampled_from(("/", "", "/x/", "/../")),
)
async def test_a_service_url_other_than_the_signed_one_never_gets_the_token(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    port: int,
    scheme: str,
    host: str,
    path: str,
) -> None:
    """Defect 6 (fixed): same host with another port or scheme, or another host: 401, nothing sent."""
    signed = connector.url
    url = f"{scheme}://{host}:{port}{path}"
    check = Check("teams-service-url", shown(url))
    if url.rstrip("/") == signed.rstrip("/"):
        check.settle()
        return
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, message(PRIYA, "help", url), signer.token(signed)
    )
    refused(check, status, set(range(400, 500)), events, sent, log)
    check.settle()


# -- found by a hostile review: text the SDK echoes back in every answer ---------------------------


# A matrix of fields refused before the turn, the one event the same for each: half on each store (tests/spread.py).
@spread(
    "where",
    {
        ".".join(where): where
        for where in [
            ("from", "name"),
            ("recipient", "name"),
            ("from", "role"),
            ("conversation", "name"),
            ("conversation", "role"),
            ("conversation", "conversationType"),
            ("locale",),
        ]
    },
)
async def test_text_too_long_to_echo_in_an_answer_is_refused_in_one_line(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    where: tuple[str, ...],
) -> None:
    """The SDK copies the accounts' names and roles, the conversation's name, role and type, and
    the locale into every answer: 100,000 characters in any of them made an answer Teams refused
    (413), after the command had run, logged as an error with its traceback. Refused before the
    turn, like an id too long to route; but its token checks out and it names its sender, so it is
    audited once under the practitioner linked to them, as Slack's signed request it cannot read is
    (no answer can reach them: any would carry the text Teams refuses)."""
    activity = message(PRIYA, "help", connector.url)
    if len(where) == 1:
        activity[where[0]] = "N" * 100_000
    else:
        activity[where[0]][where[1]] = "N" * 100_000
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, activity, signer.token(connector.url)
    )
    assert status == 400 and not sent
    assert [(e.actor_id, e.user_id, e.action, e.outcome, e.detail, e.terms) for e in events] == [
        ("P002", PRIYA.aad, "usage", "invalid", UNANSWERABLE, None)
    ]
    [line] = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    assert line["event"] == "teams_activity_invalid" and line["problems"] == [f"{where[0]}:too_long_to_answer"]
    assert "Traceback" not in log and "NNNN" not in log


async def test_a_long_but_possible_account_name_is_answered(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, logs: LogTap
) -> None:
    """Entra ID keeps display names of up to 256 characters: such a name is answered as any other."""
    activity = message(PRIYA, "help", connector.url)
    activity["from"]["name"] = "N" * 256
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, activity, signer.token(connector.url)
    )
    assert status in (200, 202) and len(events) == 1 and len(sent) == 1
    assert "Traceback" not in log
