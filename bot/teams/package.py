"""The Teams app package: manifest.json (bot, command list from the grammar) and two icons, zipped.

The icons are drawn here (a white signpost) and written with a minimal PNG encoder, so packaging
needs no image library.
"""

from __future__ import annotations

import io
import json
import re
import struct
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from handlers.dispatch.spec import Spec
from handlers.help import menu

MANIFEST_VERSION = "1.17"
SCHEMA = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
ACCENT = (0x1F, 0x6F, 0x8B)
SCOPES = ["personal", "team", "groupChat"]
MAX_COMMANDS = 10  # Teams shows at most ten per command list
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
APP_NAMESPACE = uuid.UUID("5d0f3b8e-7c1a-4f5e-9a2b-3c4d5e6f7a8b")


# The Teams manifest schema's limits: a package past them is refused when it is uploaded.
MAX_URL = 2048
MAX_VERSION = 256
MAX_DEVELOPER_NAME = 32


class PackageError(ValueError):
    """The package cannot be built from these values; the message says which one to fix."""


@dataclass(frozen=True)
class AppDetails:
    bot_id: str
    version: str
    website_url: str
    privacy_url: str
    terms_url: str
    developer_name: str = "Signpost"
    app_id: str | None = None

    def checked(self) -> AppDetails:
        """These details, or PackageError naming every value to fix (one per value), in one message:
        not one run per bad option."""
        problems = [problem for problem in self._problems() if problem]
        if problems:
            raise PackageError("; ".join(problems))
        return self

    def _problems(self) -> Iterator[str | None]:
        if not GUID.fullmatch(self.bot_id):
            yield "the bot id must be the Azure bot registration's app (client) id, a GUID"
        website = _url_problem("website", self.website_url)
        yield website
        for label, url in (("privacy", self.privacy_url), ("terms", self.terms_url)):
            # Made from the website URL (their default): fixing that one fixes these.
            if website is None or not url.startswith(self.website_url + "/"):
                yield _url_problem(label, url)
        if not re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", self.version):
            yield "the version must look like 1.2.3"
        elif len(self.version) > MAX_VERSION:
            yield f"the version must be at most {MAX_VERSION} characters (Teams requires it)"
        if not 0 < len(self.developer_name) <= MAX_DEVELOPER_NAME:
            yield f"the developer name must be 1 to {MAX_DEVELOPER_NAME} characters (Teams requires it)"
        elif not self.developer_name.isprintable():
            yield "the developer name holds a control character or a hidden formatting mark"
        if self.app_id is not None and not GUID.fullmatch(self.app_id):
            yield "the Teams app id must be a GUID"

    @property
    def teams_app_id(self) -> str:
        """Stable per bot, so a re-uploaded package updates the same Teams app."""
        return self.app_id or str(uuid.uuid5(APP_NAMESPACE, self.bot_id))


def _url_problem(label: str, url: str) -> str | None:
    """What is wrong with one of the package's URLs (the first thing), or None."""
    if not url.startswith("https://"):
        return f"the {label} URL must start with https:// (Teams requires it)"
    if len(url) > MAX_URL:
        return f"the {label} URL must be at most {MAX_URL} characters (Teams requires it)"
    try:
        _refuse_credentials(label, url)
    except PackageError as exc:
        return str(exc)
    return None


def _refuse_credentials(label: str, url: str) -> None:
    """PackageError for a URL with a user name or password in it: the manifest publishes these URLs
    to everyone in the tenant. The message names the option, never the value (it holds the secret)."""
    option = f"--{label}-url"
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracket left open in the host
        raise PackageError(f"the {label} URL ({option}) is not a URL") from None
    if parts.username is not None or parts.password is not None:
        raise PackageError(
            f"the {label} URL ({option}) must not carry a user name or password (Teams shows it to everyone)"
        )


# The menu's help entry also says how to search, which has no command word of its own.
HELP_DESCRIPTION = "What you can ask. To search, send a reference number, or a name and date of birth"


def command_list(specs: Sequence[Spec]) -> list[dict[str, str]]:
    """Teams' command menu: each entry's title is the word a person sends, its description what it
    does (``help`` first, since it also says how to search)."""
    commands = []
    for name, summary in sorted(menu(specs), key=lambda item: item[0] != "help"):
        description = HELP_DESCRIPTION if name == "help" else summary[:1].upper() + summary[1:]
        commands.append({"title": name[:32], "description": description[:128]})
    return commands[:MAX_COMMANDS]


def manifest(details: AppDetails, specs: Sequence[Spec]) -> dict[str, Any]:
    commands = command_list(specs)
    return {
        "$schema": SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": details.version,
        "id": details.teams_app_id,
        "developer": {
            "name": details.developer_name,
            "websiteUrl": details.website_url,
            "privacyUrl": details.privacy_url,
            "termsOfUseUrl": details.terms_url,
        },
        "name": {"short": "Signpost", "full": "Signpost: who else is working with this child?"},
        "description": {
            "short": "Find who else is working, or has worked, with a child.",
            "full": (
                "Signpost is a child-safeguarding signposting service. Send a child's reference number, "
                "or their name and date of birth, and Signpost answers privately with the contact details "
                "of the other practitioners involved: name, role, organisation, phone and secure email. "
                "It never holds or shows case data. Every query is audited, and results need a fresh "
                "authenticator code. In a team or group chat, mention @Signpost: the answer is sent to "
                "you privately."
            ),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": details.bot_id,
                "scopes": SCOPES,
                "isNotificationOnly": False,
                "supportsFiles": False,
                "supportsCalling": False,
                "supportsVideo": False,
                "commandLists": [{"scopes": SCOPES, "commands": commands}],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [],
    }


# Icons: a signpost (post and two arrow boards), in a 192-unit square.


def _in_signpost(x: float, y: float) -> bool:
    post = 88 <= x <= 104 and 40 <= y <= 168
    right_board = 44 <= y <= 80 and 40 <= x <= 132 + (18 - abs(y - 62))
    left_board = 96 <= y <= 132 and 60 - (18 - abs(y - 114)) <= x <= 152
    base = 64 <= x <= 128 and 160 <= y <= 170
    return post or right_board or left_board or base


def _pixels(size: int, paint: Callable[[bool], tuple[int, int, int, int]]) -> list[bytes]:
    scale = 192 / size
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            row.extend(paint(_in_signpost((x + 0.5) * scale, (y + 0.5) * scale)))
        rows.append(bytes(row))
    return rows


def png(rows: list[bytes], width: int, height: int) -> bytes:
    """An RGBA PNG (8 bits per channel, no filtering): signature, IHDR, IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def color_icon() -> bytes:
    """192x192, full colour: a white signpost on the accent colour."""
    return png(_pixels(192, lambda on: (255, 255, 255, 255) if on else (*ACCENT, 255)), 192, 192)


def outline_icon() -> bytes:
    """32x32, white on transparent, as Teams requires for the outline icon."""
    return png(_pixels(32, lambda on: (255, 255, 255, 255) if on else (0, 0, 0, 0)), 32, 32)


def package(details: AppDetails, specs: Sequence[Spec]) -> bytes:
    """The zip to upload: manifest.json and both icons at its root."""
    doc = manifest(details.checked(), specs)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(doc, indent=2, ensure_ascii=False))
        archive.writestr("color.png", color_icon())
        archive.writestr("outline.png", outline_icon())
    return buffer.getvalue()
