"""A turn whose answer cannot reach the Bot Framework connector: its serviceUrl refuses the
connection (a connector outage, or anonymous development mode on loopback with nothing there).

This is expected, not a bug of Signpost's: one warning line with a fixed reason and the turn's
reference, no traceback, no URL and no exception text (which names the host and port, or whatever
a library put in it). A message is answered 202 with nothing
more tried (an apology would go the same unreachable way); a click is answered in its response.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from bot.app import Signpost
from tests.bot.teams.teams_support import DANA, TeamsApp, channel, invoke, mention, message
from tests.bot.teams.teams_tokens import Signer
from tests.fakes.teams_connector import FakeConnector
from tests.hostile.observe import LogTap, without_info
from tests.hostile.test_http_edges import json_lines, one_quiet_line
from tests.hostile.test_teams import post
from tests.spread import spread

# A connector that cannot be reached, and what the front end logs and answers: one store shows it,
# the turns half on each (tests/spread.py)
pytestmark = pytest.mark.one_store
CHILD = "Amy Jones 03/04/2014 M1 2AB"  # in the request, to show none of it is logged


def nowhere() -> str:
    """A loopback serviceUrl on a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}/"


def clicked_in_channel(url: str) -> dict[str, Any]:
    button = {"action_id": "help", "label": "Help", "command": "help"}
    doc = invoke(DANA, {"verb": "help", "data": {"signpost": 1, "verb": "help", "button": button}}, url)
    doc["conversation"] = {"tenantId": DANA.tenant, **channel()}
    return doc


TURNS = {
    "a message in the 1:1 chat": lambda url: message(DANA, "help " + CHILD, url),
    "a mention in a channel": lambda url: mention(DANA, "help " + CHILD, url),
}


def quiet_warning(log: str) -> dict[str, Any]:
    log = without_info(log)  # each command's own ``command`` line is no warning
    assert "127.0.0.1" not in log and "Connect call failed" not in log
    one_quiet_line(log, "teams_connector_unreachable")
    line: dict[str, Any] = json.loads(json_lines(log)[0])
    assert line["level"] == "warning" and line["reason"] == "connection_failed"
    return line


@spread("turn", TURNS)
async def test_a_turn_whose_connector_is_down_is_one_warning_line(
    teams_secured: TeamsApp, loaded: Signpost, connector: FakeConnector, signer: Signer, logs: LogTap, turn: Any
) -> None:
    """With a bot registration, the signed serviceUrl refusing connections (a connector outage)
    was logged as an error with a traceback, then a second line for the apology that could not
    be sent either."""
    url = nowhere()
    status, events, sent, log = await post(teams_secured, loaded, connector, logs, turn(url), signer.token(url))
    assert status == 202 and not sent
    quiet_warning(log)
    assert [(e.action, e.outcome) for e in events] == [("help", "info")]


async def test_a_click_whose_connector_is_down_is_answered_in_its_response_in_one_line(
    teams_secured: TeamsApp, loaded: Signpost, connector: FakeConnector, signer: Signer, logs: LogTap
) -> None:
    """A click in a channel is answered privately in the 1:1 chat, through the connector: it could
    not be reached, so the click's own response says something went wrong, with the reference
    the log line has."""
    url = nowhere()
    logs.new()
    activity = json.dumps(clicked_in_channel(url)).encode()
    headers = {"Authorization": f"Bearer {signer.token(url)}", "Content-Type": "application/json"}
    response = await teams_secured.client.post("/api/messages", data=activity, headers=headers)
    shown = await response.text()
    line = quiet_warning(logs.new())
    assert response.status == 200
    assert "went wrong" in shown and line["ref"] in shown and "127.0.0.1" not in shown


async def test_in_anonymous_mode_a_turn_on_loopback_with_nothing_there_is_one_line_of_ours(
    teams: TeamsApp, loaded: Signpost, connector: FakeConnector, logs: LogTap
) -> None:
    """Anonymous development mode on loopback, with no connector (emulator) running."""
    status, _, _, log = await post(teams, loaded, connector, logs, message(DANA, "help", nowhere()), None)
    assert status == 202
    ours = "\n".join(line for line in log.splitlines() if '"logger": "signpost.' in line)
    quiet_warning(ours)
    assert "Traceback" not in log and '"exception"' not in log


async def test_a_service_url_carrying_credentials_is_refused_in_one_line(
    teams_secured: TeamsApp, loaded: Signpost, connector: FakeConnector, signer: Signer, logs: LogTap
) -> None:
    """The Bot Framework never sends a serviceUrl with a user and password in it; signed as one, it
    reached the turn, whose every answer failed in aiohttp (a bearer token and credentials in the
    URL cannot go together) and was logged as an error with a traceback."""
    url = nowhere().replace("http://", "http://signpost:s3cret@")
    status, events, sent, log = await post(
        teams_secured, loaded, connector, logs, message(DANA, "help", url), signer.token(url)
    )
    assert status == 400 and not events and not sent
    one_quiet_line(log, "teams_activity_invalid")
    assert "s3cret" not in log
