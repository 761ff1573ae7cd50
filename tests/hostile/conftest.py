"""The hostile-input suite: Hypothesis profiles, the log tap, and the counts printed at the end.

CI runs a few deterministic examples per property (``derandomize``, no example database, no
deadline). ``make fuzz`` sets SIGNPOST_FUZZ_EXAMPLES: that many random examples per property,
problems counted rather than stopping the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings

# The front-end fixtures live beside the tests they were written for; the suite reuses them.
from tests.bot.conftest import connector, fake_slack, loaded, slack_app, teams  # noqa: F401
from tests.bot.teams.conftest import secured, signer, teams_secured  # noqa: F401
from tests.hostile.observe import FAILED_IN_TEST, FUZZ_EXAMPLES, FUZZING, TALLY, LogTap, tapped_logs

CI_EXAMPLES = 12
_COMMON = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one server per test serves every example, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
settings.register_profile("hostile-ci", _COMMON, max_examples=CI_EXAMPLES, derandomize=True)
settings.register_profile(
    "hostile-fuzz",
    _COMMON,
    max_examples=max(FUZZ_EXAMPLES, 1),
    phases=[Phase.explicit, Phase.generate],  # counted, not shrunk: the run goes on to the end
)
settings.load_profile("hostile-fuzz" if FUZZING else "hostile-ci")


@pytest.fixture
def logs() -> Iterator[LogTap]:
    """Every log line the server writes during the test, rendered as in production."""
    with tapped_logs() as tap:
        yield tap


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Under ``make fuzz`` examples record their problems instead of stopping; the test fails here,
    once every example has run."""
    FAILED_IN_TEST.clear()
    outcome = yield
    if FAILED_IN_TEST and outcome.excinfo is None:  # type: ignore[attr-defined]
        found = sorted({c for c, _ in FAILED_IN_TEST})
        message = f"{len(FAILED_IN_TEST)} problem(s) across the examples: {', '.join(found)} (see the counts below)"
        outcome.force_exception(pytest.fail.Exception(message, pytrace=False))  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.sent:
        return
    terminalreporter.write_sep("=", "hostile-input suite")
    for line in TALLY.lines():
        terminalreporter.write_line(line)
    total = sum(TALLY.sent.values())
    if FUZZING and total < 10_000:
        terminalreporter.write_line(f"!!! only {total} inputs: a fuzz run needs at least 10,000", red=True)
