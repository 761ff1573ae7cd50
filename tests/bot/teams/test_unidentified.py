"""An activity that carries a Teams account id but no AAD object id names no one Signpost can act for.

Whatever its shape (a message, a messageBack or an older client's Action.Submit, an Action.Execute
click in the 1:1 chat or in a channel, a click whose value cannot be read, a dialog's button), it is
audited once as a refusal of its source, under the account and tenant it carries, and answered with
the same kind line a message gets. An AAD object id is a GUID: one that is anything else (empty,
blank, padded, an invisible character, a NUL, too long, not a string) is no AAD object id, and is
neither taken as the person nor written in the audit. Real tokens, posted to the real server on loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from structlog.testing import capture_logs

from bot.app import Signpost
from bot.teams.front import NO_AAD_ID, NO_IDENTITY
from tests.bot.teams.teams_support import (
    PRIYA,
    TeamsApp,
    channel,
    invoke,
    message,
    submit,
    task_fetch,
    teams_events,
    texts_of,
)
from tests.bot.teams.teams_tokens import Signer
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector
from tests.spread import spread

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

APPROVE = {"verb": "approve", "data": {"request_id": "1"}}
DIALOG = {"type": "Action.Submit", "data": {"msteams": {"type": "task/fetch"}, "x": 1}}


MISSING = object()


def no_aad(doc: dict[str, Any], *, null: bool = False, given: object = MISSING) -> dict[str, Any]:
    """The activity with its sender's Teams account id only (``null``: its AAD object id null;
    ``given``: its AAD object id this string, which names nobody, e.g. empty)."""
    sender = {"id": doc["from"]["id"], "name": doc["from"]["name"]}
    if given is not MISSING:
        return {**doc, "from": {**sender, "aadObjectId": given}}
    return {**doc, "from": {**sender, "aadObjectId": None} if null else sender}


def in_channel(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "conversation": {"tenantId": PRIYA.tenant, **channel()}}


def message_back(url: str) -> dict[str, Any]:
    """A messageBack click: a message with the text the button sends and its data as ``value``."""
    return {**message(PRIYA, "approve 1", url), "value": {"verb": "approve", "request_id": "1"}}


Shown = Callable[[ClientResponse, FakeConnector], Any]


async def in_chat(response: ClientResponse, connector: FakeConnector) -> str:
    assert response.status in (200, 202)
    [sent] = connector.sent
    assert sent.card is not None
    return texts_of(sent.card)


async def in_clicked_card(response: ClientResponse, connector: FakeConnector) -> str:
    assert response.status == 200 and connector.sent == []
    answer = await response.json()
    return texts_of(answer["value"])


async def in_dialog(response: ClientResponse, connector: FakeConnector) -> str:
    assert response.status == 200 and connector.sent == []
    answer = await response.json()
    return texts_of(answer["task"]["value"]["card"]["content"])


CASES: dict[str, tuple[Callable[[str], dict[str, Any]], Shown]] = {
    "message": (lambda url: no_aad(message(PRIYA, AMY, url)), in_chat),
    "messageBack": (lambda url: no_aad(message_back(url)), in_chat),
    "older client's Action.Submit": (lambda url: no_aad(submit(PRIYA, APPROVE, url, "activity-card")), in_chat),
    "Action.Execute click": (lambda url: no_aad(invoke(PRIYA, APPROVE, url)), in_clicked_card),
    "Action.Execute click, AAD id null": (lambda url: no_aad(invoke(PRIYA, APPROVE, url), null=True), in_clicked_card),
    "Action.Execute click in a channel": (lambda url: in_channel(no_aad(invoke(PRIYA, APPROVE, url))), in_clicked_card),
    "click whose value cannot be read": (
        lambda url: {**no_aad(invoke(PRIYA, APPROVE, url)), "value": {"action": AMY}},
        in_clicked_card,
    ),
    "dialog button": (lambda url: no_aad(task_fetch(PRIYA, DIALOG, url)), in_dialog),
    # An AAD object id that is there but names nobody is no AAD object id: the SDK's model refused
    # an empty one with a 400, unaudited, and a blank one would have been taken as a person's id.
    "message, AAD id empty": (lambda url: no_aad(message(PRIYA, AMY, url), given=""), in_chat),
    "message, AAD id blank": (lambda url: no_aad(message(PRIYA, AMY, url), given=" \t "), in_chat),
    "messageBack, AAD id empty": (lambda url: no_aad(message_back(url), given=""), in_chat),
    "older client's Action.Submit, AAD id empty": (
        lambda url: no_aad(submit(PRIYA, APPROVE, url, "activity-card"), given=""),
        in_chat,
    ),
    "Action.Execute click, AAD id empty": (lambda url: no_aad(invoke(PRIYA, APPROVE, url), given=""), in_clicked_card),
    "Action.Execute click, AAD id blank": (
        lambda url: no_aad(invoke(PRIYA, APPROVE, url), given="   "),
        in_clicked_card,
    ),
    "Action.Execute click in a channel, AAD id empty": (
        lambda url: in_channel(no_aad(invoke(PRIYA, APPROVE, url), given="")),
        in_clicked_card,
    ),
    "click whose value cannot be read, AAD id empty": (
        lambda url: {**no_aad(invoke(PRIYA, APPROVE, url), given=""), "value": {"action": AMY}},
        in_clicked_card,
    ),
    "dialog button, AAD id empty": (lambda url: no_aad(task_fetch(PRIYA, DIALOG, url), given=""), in_dialog),
    "dialog button, AAD id blank": (lambda url: no_aad(task_fetch(PRIYA, DIALOG, url), given=" "), in_dialog),
}


# AAD object ids are GUIDs: anything else, however it looks, names nobody. Each shape a message, a
# click and a dialog can come in, with each of these, is one with no AAD object id.
NOT_GUIDS: dict[str, object] = {
    "padded": f" {PRIYA.aad} ",
    "padded with a no-break space": f"\u00a0{PRIYA.aad}",
    "in braces": f"{{{PRIYA.aad}}}",
    "a GUID and more": f"{PRIYA.aad}-1",
    "Braille blank": "\u2800",
    "Hangul filler": "\u3164",
    "ideographic space": "\u3000",
    "zero-width space in a GUID": f"{PRIYA.aad[:8]}\u200b{PRIYA.aad[8:]}",
    "not a GUID": "aad-0002-priya",
    "a NUL": "aad\x00" + AMY,
    "longer than the audit keeps": "a" * 129,
    "a number": 5,
}
SHAPES: dict[str, tuple[Callable[[str, object], dict[str, Any]], Shown]] = {
    "message": (lambda url, given: no_aad(message(PRIYA, AMY, url), given=given), in_chat),
    "messageBack": (lambda url, given: no_aad(message_back(url), given=given), in_chat),
    "Action.Execute click": (lambda url, given: no_aad(invoke(PRIYA, APPROVE, url), given=given), in_clicked_card),
    "click whose value cannot be read": (
        lambda url, given: {**no_aad(invoke(PRIYA, APPROVE, url), given=given), "value": {"action": AMY}},
        in_clicked_card,
    ),
    "dialog button": (lambda url, given: no_aad(task_fetch(PRIYA, DIALOG, url), given=given), in_dialog),
}


def _with(shape: Callable[[str, object], dict[str, Any]], given: object) -> Callable[[str], dict[str, Any]]:
    return lambda url: shape(url, given)


for _shape, (_build, _shown) in SHAPES.items():
    for _name, _given in NOT_GUIDS.items():
        CASES[f"{_shape}, AAD id {_name}"] = (_with(_build, _given), _shown)


@spread("case", list(CASES))
async def test_no_aad_object_id_is_audited_once_and_answered_as_a_message_is(
    case: str, teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    activity, shown = CASES[case]
    token = signer.token(connector.url)
    with capture_logs() as logs:
        response = await teams_secured.post(activity(connector.url), {"Authorization": f"Bearer {token}"})
        assert (await shown(response, connector)) == NO_IDENTITY
    assert AMY not in repr(logs)
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.detail) == ("untrusted_source", "refused", NO_AAD_ID)
    assert (event.tenant, event.user_id, event.actor_id) == (PRIYA.tenant, PRIYA.teams_id, None)
    assert AMY not in str(event.subject_refs) and event.terms is None
