"""Settings from the environment (and an optional ``.env``), validated once at start-up."""

from __future__ import annotations

import difflib
import ipaddress
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.admission import MAX_LIMIT, default_limit
from store.characters import HIDDEN_IN_PATH, shows_as_itself
from store.db import url_problem


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line for the operator (one line per
    bad setting when several are)."""


class Settings(BaseSettings):
    # No setting is a number without bounds: floats are finite here (inf and nan are refused for
    # every one), and each number is declared with both ge= and le= (tests/bot/cli/test_settings.py
    # holds each to that). SIGNPOST_DRAIN_SECONDS=inf had a SIGTERM wait for ever.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", allow_inf_nan=False)

    database_url: str = Field("sqlite+aiosqlite:///./signpost.db", alias="SIGNPOST_DATABASE_URL")
    key_file: Path = Field(Path("signpost.key"), alias="SIGNPOST_KEY_FILE")
    # The audit checkpoint signing key, apart from the data keys (unset: the key file's own seed).
    signing_key_file: Path | None = Field(None, alias="SIGNPOST_SIGNING_KEY_FILE")
    # Where the scheduler writes signed checkpoints for the operator to ship off the host (unset: none).
    checkpoint_dir: Path | None = Field(None, alias="SIGNPOST_CHECKPOINT_DIR")
    host: str = Field("127.0.0.1", alias="SIGNPOST_HOST")
    port: int = Field(3000, alias="SIGNPOST_PORT", ge=1, le=65535)
    public_url: str | None = Field(None, alias="SIGNPOST_PUBLIC_URL")
    log_format: str = Field("auto", alias="SIGNPOST_LOG_FORMAT")
    log_level: str = Field("info", alias="SIGNPOST_LOG_LEVEL")
    log_file: Path = Field(Path("signpost.log"), alias="SIGNPOST_LOG_FILE")  # the console's log
    # Admission control (bot/admission.py): requests in flight before "busy", and the SIGTERM drain.
    max_in_flight: int = Field(default_factory=default_limit, alias="SIGNPOST_MAX_IN_FLIGHT", ge=1, le=MAX_LIMIT)
    drain_seconds: float = Field(25.0, alias="SIGNPOST_DRAIN_SECONDS", ge=0, le=3600)  # an hour: past any grace period
    # 0: start-up does not migrate (several replicas: run `signpost db upgrade` once, apart), and
    # refuses to start on a database behind this version.
    migrate_on_start: bool = Field(True, alias="SIGNPOST_MIGRATE_ON_START")
    # How long a command waits for another process's write lock on a SQLite store before it says
    # the store is busy (an hour: past any import).
    sqlite_busy_seconds: float = Field(30.0, alias="SIGNPOST_SQLITE_BUSY_SECONDS", ge=0, le=3600)

    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str | None = Field(None, alias="SIGNPOST_SLACK_API_URL")
    # Seconds a search may take (its audit event durable) to be answered in the slash command's own
    # ack; later answers go to a modal. Slack waits 3 s for the ack. 0: always the modal.
    slack_answer_budget: float = Field(1.5, alias="SIGNPOST_SLACK_ANSWER_BUDGET", ge=0, le=2.5)

    # Microsoft Teams: the Azure bot registration, in the Agents SDK's own variable names.
    teams_client_id: str | None = Field(None, alias="CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID")
    teams_client_secret: SecretStr | None = Field(None, alias="CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET")
    teams_cert_file: Path | None = Field(None, alias="CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CERTPFXFILE")
    teams_tenant_id: str | None = Field(None, alias="CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID")
    teams_anonymous: bool = Field(False, alias="SIGNPOST_TEAMS_ANONYMOUS")  # local development only
    teams_jwks_url: str | None = Field(None, alias="SIGNPOST_TEAMS_JWKS_URL")  # signing keys override
    # Tenants whose people may use the bot (comma-separated); default: the registration's TENANTID.
    teams_tenants: str | None = Field(None, alias="SIGNPOST_TEAMS_TENANTS")

    @field_validator("database_url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        problem = url_problem(value)  # names the part that is wrong, never the URL (it may hold a password)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        problem = public_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value.rstrip("/")

    @field_validator("slack_api_url", "teams_jwks_url")
    @classmethod
    def _callable_url(cls, value: str | None) -> str | None:
        # Signpost calls these itself, the bot token going to the Slack one: a URL the HTTP client
        # cannot use failed every call (a Slack command answered 500), a password in it was refused
        # by the client the same way, and plain http off this machine sent the token in clear.
        if not value:
            return None
        problem = public_url_problem(value, example=CALLED_URL_EXAMPLE)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("slack_signing_secret", "slack_bot_token", "slack_app_token", "teams_client_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Empty (left blank in a .env) is unset: an empty signing secret was a key anyone can sign
        # with. No secret or token holds a space or a control character; one pasted with a line
        # break was sent in a header the HTTP client refused, or was a key no sender holds.
        if value is None or not value.get_secret_value():
            return None
        if not _one_word(value.get_secret_value()):
            raise ValueError("holds a space, a line break or a control character")
        return value

    @field_validator("key_file", "signing_key_file", "checkpoint_dir", "log_file", "teams_cert_file")
    @classmethod
    def _path_shows(cls, value: Path | None) -> Path | None:
        # As a path typed on the command line (bot.cli.arguments.file_path): one that does not show
        # as itself (ESC and the sequence it starts, a line break) acted on the operator's terminal
        # when an error named it, and reached the audit when a command recorded it.
        if value is not None and not shows_as_itself(str(value)):
            raise ValueError(HIDDEN_IN_PATH)
        return value

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in LOG_FORMATS:
            raise ValueError("must be auto, console or json")
        return value

    @field_validator("signing_key_file")
    @classmethod
    def _apart(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Naming the key file itself means the default: its own seed.
        return None if value is not None and value == info.data.get("key_file") else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in LEVELS:
            raise ValueError("must be debug, info, warning or error")
        return value.lower()

    @property
    def slack_enabled(self) -> bool:
        """Slack is served when configured; a partial configuration is refused (``check_slack``)."""
        return self.slack_signing_secret is not None and self.slack_bot_token is not None

    @property
    def teams_given(self) -> bool:
        """Whether any Teams registration variable is set: an empty one is unset, as the server reads it."""
        return any((self.teams_client_id, self.teams_client_secret, self.teams_cert_file, self.teams_tenant_id))

    @property
    def teams_enabled(self) -> bool:
        """Teams is served when its registration is given (a partial one is refused:
        ``bot.teams.front.teams_setup``), or anonymously for local development."""
        return self.teams_anonymous or self.teams_given

    @property
    def chat_configured(self) -> bool:
        """Whether `signpost run` serves a chat platform here (the very tests ``bot.serve.front_ends``
        starts them by): then the server delivers notices on chat, and a command on the host queues
        them for whom chat can reach. Not when it opens the console: an empty variable is unset."""
        return self.slack_enabled or self.teams_enabled

    def check_slack(self) -> None:
        """Refuse a partial Slack configuration, naming what is missing (it would open the console)."""
        given = {
            "SLACK_SIGNING_SECRET": self.slack_signing_secret,
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "SLACK_APP_TOKEN": self.slack_app_token,
        }
        if not any(given.values()):
            return
        missing = [name for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN") if given[name] is None]
        if missing:
            present = ", ".join(name for name, value in given.items() if value is not None)
            raise SettingsError(f"Slack is only partly configured ({present} set): also set {' and '.join(missing)}")

    @property
    def base_url(self) -> str:
        """Where people's browsers reach this server (enrolment links)."""
        return self.public_url or f"http://{self.host}:{self.port}"


LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "console", "json")
# SIGNPOST_* names read elsewhere than Settings (the test suite's database and `make fuzz`'s size,
# the console's dev clock).
OTHER_NAMES = frozenset({"SIGNPOST_DEV_CLOCK", "SIGNPOST_TEST_POSTGRES_URL", "SIGNPOST_FUZZ_EXAMPLES"})


def known_names() -> frozenset[str]:
    """Every SIGNPOST_* variable Signpost reads."""
    aliases = {field.alias for field in Settings.model_fields.values() if field.alias}
    return frozenset(name for name in aliases if name.startswith("SIGNPOST_")) | OTHER_NAMES


def unknown_names(environ: Mapping[str, str]) -> list[str]:
    """One line per unknown SIGNPOST_* variable (a misspelling is otherwise silently ignored)."""
    known = known_names()
    lines = []
    for name in sorted(n for n in environ if n.startswith("SIGNPOST_") and n not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"unknown setting {name} is ignored{hint}")
    return lines


def _one_word(text: str) -> bool:
    return text.isprintable() and not any(c.isspace() for c in text)


LOOPBACK_NAMES = frozenset({"localhost"})
PUBLIC_URL_EXAMPLE = "https://signpost.example.org"
CALLED_URL_EXAMPLE = "https://proxy.example.org/api/"


def public_url_problem(value: str, *, example: str = PUBLIC_URL_EXAMPLE) -> str | None:
    """Why ``value`` cannot be where people's browsers reach Signpost (it goes into enrolment
    links), or None. Plain http only for this machine itself: a code's set-up page travels in it.
    The same for a URL Signpost calls (``example`` the one to show): a token travels to it."""
    expected = f"must be an absolute https:// URL such as {example} (http:// only for localhost)"
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number (or out of range)
    except ValueError:
        return expected
    # A user name or password in it would be copied into every enrolment link people are sent.
    credentials = parts.username is not None or parts.password is not None
    if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment or credentials:
        return expected
    if not _one_word(value):  # pasted with a space or a line break
        return expected
    if parts.scheme == "http" and not is_loopback(host):
        return "must use https:// (http:// only for localhost)"
    return None


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Python's own message quotes the bytes around the bad one, which may be part of a secret.
DOTENV_NOT_UTF8 = "the .env file is not UTF-8 text (save it as UTF-8)"


DOTENV_NOT_A_FILE = "the .env file is not a regular file (a named pipe or a device): make it one, or remove it"


def check_dotenv(env_file: object) -> None:
    """SettingsError when the .env (``env_file``: a path, several, or None) is there but is no
    regular file: a named pipe with no writer held every command for ever, waiting to read it (the
    settings library reads pipes). Looked at with stat, never opened. A folder is passed over, as
    the library does (a virtual environment is often called .env)."""
    paths = env_file if isinstance(env_file, (list, tuple)) else [env_file]
    for path in paths:
        if not isinstance(path, (str, os.PathLike)):
            continue
        try:
            mode = os.stat(path).st_mode
        except OSError:  # not there (or not to be looked at): the library passes it over too
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise SettingsError(DOTENV_NOT_A_FILE)
        if stat.S_ISREG(mode):
            _check_dotenv_lines(path)


# The library passes over a line it cannot read, with a warning, and reads the rest: the setting
# on it (a store's URL with its closing quote missing) was silently not set, and a command ran on
# the default store. Its warning, and Python's errors, may quote the line: the number only.
DOTENV_BAD_LINE = "the .env file's line {line} is not NAME=value (a quote not closed?): mend it; nothing was run"


def _check_dotenv_lines(path: str | os.PathLike[str]) -> None:
    """SettingsError naming the first line of the .env file that is no setting, a comment or blank."""
    try:
        with open(path, encoding="utf-8") as lines:
            for binding in parse_stream(lines):
                if binding.error:
                    read = binding.original.string
                    blank_before = read[: len(read) - len(read.lstrip())].count("\n")
                    raise SettingsError(DOTENV_BAD_LINE.format(line=binding.original.line + blank_before))
    except UnicodeDecodeError:
        raise SettingsError(DOTENV_NOT_UTF8) from None


def load_settings(**overrides: object) -> Settings:
    """Read settings; turn validation failures into one clear line per bad setting."""
    check_dotenv(overrides.get("_env_file", Settings.model_config.get("env_file")))
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]  # pydantic accepts aliases at runtime
    except ValidationError as exc:
        lines = [f"bad setting: {'.'.join(str(p) for p in err['loc'])}: {_problem(err)}" for err in exc.errors()]
        raise SettingsError("\n".join(lines)) from None
    except UnicodeDecodeError:  # only the .env file is read as bytes
        raise SettingsError(DOTENV_NOT_UTF8) from None
    return settings


# What is expected, in the operator's words, for pydantic's own checks. Never the value given:
# a setting may be a secret, and pydantic's own message may quote it.
_EXPECTED = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false (1 or 0)",
    "greater_than_equal": "must be at least {ge:g}",
    "greater_than": "must be more than {gt:g}",
    "less_than_equal": "must be at most {le:g}",
    "less_than": "must be less than {lt:g}",
    "string_type": "must be text",
    "path_type": "must be a file or folder path",
}


def _problem(error: ErrorDetails) -> str:
    """A validator's own words ("the port must be …"), without pydantic's "Value error, " before them;
    for pydantic's own checks, what is expected ("must be a whole number")."""
    context = error.get("ctx", {})
    raised = context.get("error")
    if error["type"] == "value_error" and raised is not None:
        return str(raised)
    expected = _EXPECTED.get(error["type"])
    if expected is None:
        return "is not a value this setting can take"
    return expected.format(**{k: v for k, v in context.items() if isinstance(v, int | float)})


def environment_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """What to tell the operator about the environment (and ``.env``) before anything runs."""
    if environ is None:
        check_dotenv(".env")
        try:
            from_file = {k: v or "" for k, v in dotenv_values(".env").items()} if Path(".env").is_file() else {}
        except UnicodeDecodeError:
            raise SettingsError(DOTENV_NOT_UTF8) from None
        environ = {**from_file, **os.environ}
    return unknown_names(environ)
