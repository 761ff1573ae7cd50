"""Hostile card clicks and non-message activities with a valid token: an Action.Execute (a button
with its input, and a code), a dialog opened and submitted, an older client's Action.Submit, an
invoke of another name and a conversationUpdate, each as Teams sends it with one to three of its
fields removed, given junk, a pasted child's identity, or another field's word.

Whatever the activity: never a 5xx or a traceback, at most one warning line, at most one command
audited, and the pasted identity never in a log line or in the text or cards sent to Teams (the ids
Teams gave come back in an answer's addressing, as the Bot Framework needs them).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.app import Signpost
from bot.teams.render import CODE_VERB, MARK
from handlers.vocabulary import Action
from tests.bot.teams.teams_support import DANA, PRIYA, TeamsApp, invoke, message, submit, task_fetch
from tests.bot.teams.teams_tokens import Signer
from tests.fakes.teams_connector import FakeConnector
from tests.hostile import strategies as hs
from tests.hostile.observe import UNAUDITED, Check, LogTap, shown
from tests.hostile.test_teams import post

# What the request-access button of a search's card carries (bot/teams/render.py), as Teams returns it.
BUTTON = {
    "action_id": "request_access",
    "label": "Request access",
    "command": "request 999 000 0050",
    "style": None,
    "input": {"name": "reason", "label": "Why do you need access?", "required": True, "max_length": 500},
}
REQUEST = {MARK: 1, "verb": "request_access", "button": BUTTON}
CODE = {MARK: 1, "verb": CODE_VERB, "code": "123456", "challenge_id": "c0ffee"}
# Teams' own keys never mutated: a serviceUrl or channel other than the signed ones is refused
# before anything is read (tests/hostile/test_teams.py has those).
KEEP = frozenset({"serviceUrl", "channelId"})


def activities(url: str) -> list[dict[str, Any]]:
    dialog = {"type": "Action.Submit", "data": {**REQUEST, "msteams": {"type": "task/fetch"}}}
    other = message(PRIYA, "", url)
    other.update(type="invoke", name="composeExtension/query", value={"commandId": "x"})
    update = message(PRIYA, "", url)
    update.update(type="conversationUpdate", membersAdded=[{"id": PRIYA.teams_id}])
    del update["text"]
    return [
        invoke(DANA, {"verb": "request_access", "data": REQUEST}, url, {"reason": "section 47 enquiry"}),
        invoke(PRIYA, {"verb": CODE_VERB, "data": CODE}, url),
        task_fetch(PRIYA, dialog, url),
        task_fetch(PRIYA, {"type": "Action.Submit", "data": REQUEST}, url, {"reason": "s47"}),
        submit(PRIYA, {"data": CODE}, url, "activity-card"),
        other,
        update,
    ]


@given(data=st.data())
async def test_hostile_clicks_and_other_activities_are_refused_or_answered_once(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logs: LogTap,
    data: st.DataObject,
) -> None:
    original = data.draw(st.sampled_from(activities(connector.url)), label="kind")
    activity = data.draw(hs.mutated(original, KEEP), label="activity")
    check = Check("teams-click", shown(activity, 600))
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, activity, signer.token(connector.url)
    )
    check.status(status, range(200, 500), "a signed activity")
    check.logs(log)
    check.one_line_at_most(log)
    # An answer that could not be shown (no response_url, no trigger) is recorded so, beside its command.
    commands = [e for e in events if e.action != Action.ANSWER_NOT_SHOWN.value]
    check.expect(len(commands) <= 1, UNAUDITED, f"{[(e.action, e.outcome) for e in events]}")
    check.outbound([{"text": s.body.get("text"), "attachments": s.body.get("attachments")} for s in sent])
    check.settle()
