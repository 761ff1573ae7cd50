"""A notice queued by a command on the host is addressed as the server that will deliver it judges
who can be reached: with Slack configured, a duty manager with no chat link is passed over for an
admin who has one, as after a reset or lockout in chat; with no chat platform configured (the
console demo), the console reaches everyone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Signpost
from bot.cli.common import reaches
from bot.cli.totp import TOLD_ON_RECORD
from bot.config import load_settings
from bot.delivery import CHAT_PLATFORMS, CONSOLE_ONLY
from bot.notify import Outbox
from bot.serve import front_ends
from bot.slack.front import SlackDeliverer, add_slack, web_client
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.stepup import reset
from handlers.vocabulary import Platform, Principal
from store.people import practitioners
from tests.access_helpers import load_access, notices
from tests.bot.cli.conftest import Cli
from tests.bot.conftest import slack_settings
from tests.bot.slack.slack_requests import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.slack_api import FakeSlackApi
from tests.stepup_helpers import enrol_and_step_up


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    """The standard feeds: DM01 is Northshire's only duty manager; AD01 an admin."""
    await load_access(signpost)
    return signpost


def slack_env(fake: FakeSlackApi) -> dict[str, str]:
    return {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SIGNPOST_SLACK_API_URL": fake.api_url,
    }


async def test_a_host_reset_with_slack_configured_reaches_a_linked_admin_when_the_duty_manager_has_no_link(
    app: Signpost, cli: Cli, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Only AD01 is linked (on Slack); DM01 has no chat link. `signpost totp reset P003` on a host
    configured for Slack tells AD01, and the Slack server DMs them; nothing waits for DM01."""
    await enrol_and_step_up(app, "P003")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, Principal(Platform.SLACK, "T0001", "U0ADMIN"), "AD01", clock.now())

    done = await cli.run("totp", "reset", "P003", env=slack_env(fake_slack))
    assert done.code == 0, done.err
    told = [n.recipient_id for n in await notices(app) if n.kind == reset.MANAGERS_KIND]
    assert told == ["AD01"]

    settings = slack_settings(fake_slack)
    create_app(app, settings, [add_slack])  # the server as `signpost run` wires it
    clock.set(datetime.now(UTC))  # the terminal queued it on the real clock
    await Outbox(app.ctx, [SlackDeliverer(web_client(settings))]).deliver_due()
    opened = {c.answer["channel"]["id"]: c.body["users"] for c in fake_slack.of("conversations.open")}
    posted = [(opened[c.body["channel"]], c.body["text"]) for c in fake_slack.of("chat.postMessage")]
    assert [user for user, text in posted if "reset practitioner P003's" in text] == ["U0ADMIN"]
    assert await notices(app, "DM01") == []


async def test_a_host_reset_with_no_chat_platform_configured_tells_the_duty_manager(app: Signpost, cli: Cli) -> None:
    """The console demo (no Slack or Teams settings): the console reaches every active practitioner,
    so DM01 is told, unlinked as they are."""
    await enrol_and_step_up(app, "P003")
    done = await cli.run("totp", "reset", "P003")
    assert done.code == 0, done.err
    told = [n.recipient_id for n in await notices(app) if n.kind == reset.MANAGERS_KIND]
    assert told == ["DM01"]


async def test_the_terminal_says_who_was_told_of_a_reset_and_of_a_replacement_by_role_only(
    app: Signpost, cli: Cli
) -> None:
    """`totp reset` and `totp enrol --replace` over a working authenticator say that the practitioner
    and their duty managers were told, naming nobody; issuing one over a pending one says nothing of it."""
    await enrol_and_step_up(app, "P003")
    done = await cli.run("totp", "reset", "P003")
    assert done.code == 0, done.err
    assert done.out.strip() == (
        f"Reset P003's authenticator. They can send enrol to set up a new one. They were {TOLD_ON_RECORD}, "
        "and so were their duty managers."
    )

    await enrol_and_step_up(app, "P003")
    replaced = await cli.run("totp", "enrol", "P003", "--replace", "--secret-file", "p003.secret")
    assert replaced.code == 0, replaced.err
    assert replaced.out.rstrip().endswith(
        f"The authenticator it replaced no longer works: they were {TOLD_ON_RECORD}, and so were their duty managers."
    )
    again = await cli.run("totp", "enrol", "P003", "--secret-file", "p003-again.secret")  # over a pending one
    assert again.code == 0, again.err
    assert "replaced" not in again.out and "told" not in again.out


@pytest.mark.parametrize("variable", ["TENANTID", "CLIENTID", "CLIENTSECRET"])
def test_an_empty_teams_variable_is_no_chat_platform_for_the_server_or_the_host(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID=` (set, empty): `signpost run` starts no
    chat front end and opens the console, yet host commands judged chat configured and passed over
    a duty manager the console reaches. Both now ask one question (``Settings.chat_configured``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(f"CONNECTIONS__SERVICE_CONNECTION__SETTINGS__{variable}", "")
    settings = load_settings()
    assert front_ends(settings) == []
    assert reaches(settings) == CONSOLE_ONLY


def test_a_real_slack_configuration_reaches_the_chat_platforms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlackApi
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID", "")
    for name, value in slack_env(fake_slack).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert len(front_ends(settings)) == 1
    assert reaches(settings) == CHAT_PLATFORMS
