"""manifest.yml and bot/slack/front.py agree: every command, event and action id has a handler and
every handler is declared; the manifest asks for the minimal scopes only."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.slack.front import ACTION_IDS, EVENTS, EVENTS_PATH, SLASH_COMMAND
from bot.slack.render import ENTER_CODE
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, slack_events

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

ROOT = Path(__file__).resolve().parents[3]
# Buttons a feature in flight adds, registered before it lands (the last test below says when to
# remove them). Access requests (issue 5) have landed: approve and deny are model buttons now.
AWAITING_MERGE: frozenset[str] = frozenset()
FRONT_END_ONLY = frozenset({ENTER_CODE})  # Slack's own fallback button, not a model Button


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    return doc


def model_button_action_ids() -> set[str]:
    """action_id of every Button(...) the handlers build, read from their source."""
    found: set[str] = set()
    for path in (ROOT / "handlers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Button":
                values = [k.value for k in node.keywords if k.arg == "action_id"] + node.args[:1]
                found.update(v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return found


def test_manifest_metadata_display_and_bot_user(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"] == {"major_version": 1, "minor_version": 1}
    assert manifest["display_information"]["name"] == "Signpost"
    assert len(manifest["display_information"]["description"]) <= 140
    assert manifest["features"]["bot_user"]["display_name"] == "Signpost"
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True and home["messages_tab_read_only_enabled"] is True


def test_manifest_slash_commands_are_exactly_the_handled_ones(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert {c["command"] for c in commands} == {SLASH_COMMAND}
    assert all(c["usage_hint"] and c["url"].endswith(EVENTS_PATH) for c in commands)


def test_the_usage_hint_shows_the_demo_examples_the_readme_gives(manifest: dict[str, Any]) -> None:
    """The hint's examples are the demo child's (README, console), not another invented identity."""
    [command] = manifest["features"]["slash_commands"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = [part.strip() for part in command["usage_hint"].split("|")]
    assert examples == ["999 000 1006", "Ava Price 05/01/2014 NS1 3LY", "help"]
    assert all(f"`{example}`" in readme for example in examples[:2])


def test_the_manifest_names_files_that_exist() -> None:
    """Its header says which test and module keep it in step: both must be real paths."""
    header = (ROOT / "manifest.yml").read_text(encoding="utf-8").split("\n_metadata", 1)[0]
    named = [word.rstrip(".,") for word in header.split() if word.rstrip(".,").endswith(".py")]
    assert named and all((ROOT / path).is_file() for path in named), named


def test_manifest_events_are_exactly_the_handled_ones(manifest: dict[str, Any]) -> None:
    subscriptions = manifest["settings"]["event_subscriptions"]
    assert set(subscriptions["bot_events"]) == set(EVENTS)
    assert subscriptions["request_url"].endswith(EVENTS_PATH)
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True and interactivity["request_url"].endswith(EVENTS_PATH)


def test_manifest_asks_for_the_minimal_scopes(manifest: dict[str, Any]) -> None:
    """commands (the slash command), chat:write and im:write (notices by DM), and users:read(.email):
    a registration shows the duty manager who Slack says the account is. Nothing that reads messages."""
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert scopes == ["commands", "chat:write", "im:write", "users:read", "users:read.email"]
    assert not any(scope.endswith(":history") or scope.startswith("files") for scope in scopes)
    assert "user" not in manifest["oauth_config"]["scopes"]


# The bot-token scope each Slack Web API method Signpost calls needs (Slack's method reference);
# None: no scope (auth.test; views.* act on a trigger id or the person's own Home tab).
# apps.connections.open is called with the app-level token (connections:write), not a bot scope.
METHOD_SCOPES: dict[str, str | None] = {
    "auth_test": None,
    "chat_postMessage": "chat:write",
    "conversations_open": "im:write",
    "users_info": "users:read",
    "views_open": None,
    "views_push": None,
    "views_update": None,
    "views_publish": None,
    "apps_connections_open": None,
}
# Scopes no method call names: the slash command itself, and the email in users.info's profile.
FEATURE_SCOPES = {"commands", "users:read.email"}


def test_every_web_api_method_called_has_its_scope_and_every_scope_a_use(manifest: dict[str, Any]) -> None:
    """No call Slack would refuse for a missing scope, and no scope nothing uses: a new Web API call
    in bot/slack must be added above with the scope it needs (and that scope to the manifest)."""
    source = "\n".join(path.read_text("utf-8") for path in sorted((ROOT / "bot" / "slack").glob("*.py")))
    called = set(re.findall(r"\b(?:client|_asker)\.([a-z]+_[A-Za-z_]+)\(", source)) - {"send_socket_mode_response"}
    assert "chat_postMessage" in called  # the scan finds the calls
    assert called == set(METHOD_SCOPES), f"Web API calls without a known scope: {sorted(called - set(METHOD_SCOPES))}"
    needed = {scope for scope in METHOD_SCOPES.values() if scope} | FEATURE_SCOPES
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed


def test_every_model_button_has_a_slack_handler() -> None:
    used = model_button_action_ids()
    assert "request_access" in used  # the scan finds the buttons handlers/search.py builds
    assert used <= ACTION_IDS, f"buttons without a Slack handler: {sorted(used - ACTION_IDS)}"


def test_every_slack_action_handler_belongs_to_a_model_button() -> None:
    unused = ACTION_IDS - model_button_action_ids() - FRONT_END_ONLY - AWAITING_MERGE
    assert unused == set(), f"Slack handlers for buttons nobody builds: {sorted(unused)}"


def test_awaiting_merge_list_is_removed_once_those_buttons_exist() -> None:
    landed = AWAITING_MERGE & model_button_action_ids()
    assert landed == set(), f"{sorted(landed)} now exist in handlers/: remove them from AWAITING_MERGE"


async def test_every_registered_action_id_is_routed_and_an_unknown_one_is_not(
    slack_app: SlackHarness,
) -> None:
    """Bolt answers 404 for an unhandled request: each declared action id must get 200. An unknown
    one is taken too (a button of an older version's), as a button Signpost cannot read: 200, audited."""
    user = SlackUser("U0ANY")
    button = {
        "action_id": "",
        "text": {"type": "plain_text", "text": "x"},
        "value": json.dumps({"c": "help"}),
    }
    for action_id in sorted(ACTION_IDS):
        click = slack_app.slack.block_action_from_message(user, {**button, "action_id": action_id}, "actions-0")
        assert (await slack_app.slack.interactive(click)).status == 200, action_id
    stray = slack_app.slack.block_action_from_message(user, {**button, "action_id": "not_ours"}, "actions-0")
    assert (await slack_app.slack.interactive(stray)).status == 200
    await slack_app.front.idle()
    events = [(e.action, e.detail) for e in await slack_events(slack_app.signpost)]
    assert events.count(("usage", "unknown button")) == 1


async def test_every_subscribed_event_is_routed_and_an_unsubscribed_one_is_not(
    slack_app: SlackHarness,
) -> None:
    user = SlackUser("U0ANY")
    for n, event_type in enumerate(sorted(EVENTS)):
        event = {"type": event_type, "user": user.user_id, "tab": "messages", "event_ts": "1.1"}
        assert (await slack_app.slack.event(user, event, event_id=f"Ev{n}")).status == 200, event_type
    stray = {"type": "reaction_added", "user": user.user_id, "reaction": "eyes", "event_ts": "1.1"}
    assert (await slack_app.slack.event(user, stray, event_id="EvX")).status == 404
    await slack_app.front.idle()
