"""`signpost teams package`: a zip Teams accepts (manifest valid against the v1.17 schema's
requirements, icons of the right sizes), with a command list that mirrors the grammar."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import structlog

from bot.cli.main import main
from handlers.commands import all_specs
from handlers.grammar import parse
from handlers.stepup import flow as stepup
from handlers.vocabulary import Command, Reply
from tests.bot.process import run_signpost

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

SCHEMA = json.loads((Path(__file__).parent / "teams_manifest_schema.json").read_text())
BOT_ID = "6c1f4b1e-0b7e-4a47-9d8f-5a8f7e3c2b10"
PIXEL = tuple[int, int, int, int]


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No .env and no Teams or public-URL variables from the machine running the tests; and the
    logging set-up that main() installs (bound to this test's captured stderr) undone afterwards."""
    monkeypatch.chdir(tmp_path)
    for name in ("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID", "SIGNPOST_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def build(tmp_path: Path, *extra: str) -> zipfile.ZipFile:
    out = tmp_path / "teams.zip"
    assert main(["teams", "package", "--out", str(out), *extra]) == 0
    return zipfile.ZipFile(out)


def read_png(data: bytes) -> tuple[int, int, list[list[PIXEL]]]:
    """Width, height and RGBA pixels of the unfiltered 8-bit RGBA PNGs the packager writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 6)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    rows = []
    for y in range(height):
        line = raw[y * stride : (y + 1) * stride]
        assert line[0] == 0
        rows.append([tuple(line[1 + 4 * x : 5 + 4 * x]) for x in range(width)])
    return width, height, rows  # type: ignore[return-value]


def test_package_manifest_is_valid_against_the_teams_schema(tmp_path: Path) -> None:
    with build(tmp_path, "--bot-id", BOT_ID, "--website-url", "https://signpost.example/") as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["bots"][0]["botId"] == BOT_ID
    assert manifest["developer"]["privacyUrl"] == "https://signpost.example/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == "https://signpost.example/terms"
    assert set(manifest["bots"][0]["scopes"]) == {"personal", "team", "groupChat"}


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    """The schema excerpt rejects what Teams would reject (so the test above means something)."""
    with build(tmp_path, "--bot-id", BOT_ID, "--website-url", "https://signpost.example") as archive:
        manifest: dict[str, Any] = json.loads(archive.read("manifest.json"))
    for broken in (
        {**manifest, "accentColor": "teal"},
        {**manifest, "developer": {**manifest["developer"], "privacyUrl": "http://signpost.example/p"}},
        {k: v for k, v in manifest.items() if k != "icons"},
        {**manifest, "name": {"short": "S" * 31}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def test_the_app_id_is_stable_for_a_bot(tmp_path: Path) -> None:
    """Packaging twice for the same bot yields the same Teams app id (an upload updates the app)."""
    ids = []
    for _ in range(2):
        with build(tmp_path, "--bot-id", BOT_ID, "--website-url", "https://signpost.example") as archive:
            ids.append(json.loads(archive.read("manifest.json"))["id"])
    assert ids[0] == ids[1]


async def never_resumed(command: Command) -> Reply:
    raise AssertionError("nothing is dispatched")


def test_command_list_is_the_words_people_send_with_what_each_does(tmp_path: Path) -> None:
    """Each menu entry's title is a command word (no example data), its description what it does:
    help first (it also says how to search), enrol included, admin-only commands left out."""
    with build(tmp_path, "--bot-id", BOT_ID, "--website-url", "https://signpost.example") as archive:
        manifest = json.loads(archive.read("manifest.json"))
    [commands] = [c["commands"] for c in manifest["bots"][0]["commandLists"]]
    specs = all_specs(*stepup.make_specs(never_resumed, "https://signpost.example"))
    keywords = frozenset(s.name for s in specs if s.keyword)
    titles = [c["title"] for c in commands]
    assert all(parse(title, keywords).name == title for title in titles)
    assert titles[0] == "help" and "enrol" in titles and "history" in titles and "pending" in titles
    assert "unlink" not in titles and "decommission" not in titles
    assert not any(ch.isdigit() for title in titles for ch in title)
    by_title = {c["title"]: c["description"] for c in commands}
    assert by_title["enrol"] == "Set up the authenticator app Signpost asks codes from"
    assert "reference number" in by_title["help"] and "date of birth" in by_title["help"]


def test_icons_have_the_sizes_and_colours_teams_requires(tmp_path: Path) -> None:
    """color.png is 192x192 and opaque; outline.png is 32x32, white on transparent only."""
    with build(tmp_path, "--bot-id", BOT_ID, "--website-url", "https://signpost.example") as archive:
        colour = read_png(archive.read("color.png"))
        outline = read_png(archive.read("outline.png"))
    width, height, pixels = colour
    assert (width, height) == (192, 192)
    flat = {p for row in pixels for p in row}
    assert all(p[3] == 255 for p in flat) and (255, 255, 255, 255) in flat and len(flat) == 2
    width, height, pixels = outline
    assert (width, height) == (32, 32)
    flat = {p for row in pixels for p in row}
    assert flat == {(255, 255, 255, 255), (0, 0, 0, 0)}


def test_settings_supply_the_bot_id_and_website(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID", BOT_ID)
    monkeypatch.setenv("SIGNPOST_PUBLIC_URL", "https://signpost.council.example")
    with build(tmp_path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["bots"][0]["botId"] == BOT_ID
    assert manifest["developer"]["websiteUrl"] == "https://signpost.council.example"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no bot id"),
        (("--bot-id", BOT_ID), "no website URL"),
        (("--bot-id", "my-bot", "--website-url", "https://s.example"), "a GUID"),
        (("--bot-id", BOT_ID, "--website-url", "http://s.example"), "https://"),
        (("--bot-id", BOT_ID, "--website-url", "https://s.example", "--app-version", "1.0"), "1.2.3"),
        # What the Teams schema refuses at upload (hostile review: the package was written, and Teams
        # refused it when uploaded, far from the command that made it).
        (("--bot-id", BOT_ID, "--website-url", "https://s.example", "--developer-name", "D" * 33), "32"),
        (("--bot-id", BOT_ID, "--website-url", "https://s.example", "--developer-name", ""), "32"),
        (("--bot-id", BOT_ID, "--website-url", "https://s.example", "--developer-name", "A\u202eB"), "hidden"),
        (("--bot-id", BOT_ID, "--website-url", "https://s.example/" + "p" * 2100), "2048"),
        (("--bot-id", BOT_ID, "--website-url", "https://s.example", "--app-version", "9" * 300 + ".0.0"), "256"),
    ],
)
def test_bad_package_options_get_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "teams.zip"
    assert main(["teams", "package", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("signpost: ") and message in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("option", ["--website-url", "--privacy-url", "--terms-url"])
@pytest.mark.parametrize("url", ["https://zz9user:SeKrEtPkg@x.example", "https://zz9user@x.example"])
def test_a_url_carrying_a_user_name_or_password_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, url: str
) -> None:
    """The password went into manifest.json's website, privacy and terms URLs, for every Teams user
    to read: now one line naming the option, never the value, and no package written."""
    out = tmp_path / "teams.zip"
    args = ["--bot-id", BOT_ID, "--website-url", "https://s.example", option, url]  # the last one given counts
    assert main(["teams", "package", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("signpost: cannot build the Teams package: ") and err.count("\n") == 1
    assert f"({option})" in err and "user name or password" in err
    assert "SeKrEtPkg" not in err and "zz9user" not in err and "x.example" not in err
    assert not out.exists()


def test_a_url_that_cannot_be_read_as_one_is_a_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bracket left open in the host is one line naming the option, not a crash."""
    out = tmp_path / "teams.zip"
    assert main(["teams", "package", "--out", str(out), "--bot-id", BOT_ID, "--website-url", "https://[zz9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("signpost: ") and "(--website-url)" in err and err.count("\n") == 1 and "zz9" not in err


def test_a_package_write_cut_short_leaves_no_package_under_its_name(tmp_path: Path) -> None:
    """A `signpost teams package` whose write stops half-way (the disk full, here the file-size
    limit at half the package; a kill -9 there leaves the same) leaves no file under the name
    given, which would be uploaded cut short, and says so in one line; a second run writes the
    whole package and leaves nothing else behind."""
    out = tmp_path / "teams.zip"
    options = ["--out", str(out), "--bot-id", BOT_ID, "--website-url", "https://signpost.example"]

    with build(tmp_path, *options[2:]):
        pass
    whole = out.stat().st_size
    out.unlink()

    cut = run_signpost("teams", "package", *options, cwd=tmp_path, file_size_limit=whole // 2)
    assert (cut.returncode, cut.stderr) == (2, f"signpost: cannot write {out}: File too large\n")
    assert not out.exists()
    again = run_signpost("teams", "package", *options, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teams.zip"]
    with zipfile.ZipFile(out) as package:
        assert package.testzip() is None
        assert "manifest.json" in package.namelist()


def test_a_link_at_the_packages_temporary_name_is_refused_and_nothing_is_written_through_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone able to write the folder links `.teams.zip.partial` (the name every file Signpost
    writes for the operator goes by first: ``store.files.write_whole``) to a file of theirs: the
    command is refused in one line naming that link, their file gets nothing, and no package appears."""
    out = tmp_path / "teams.zip"
    theirs = tmp_path / "someone-elses-file"
    theirs.write_bytes(b"")
    (tmp_path / ".teams.zip.partial").symlink_to(theirs)
    options = ["--out", str(out), "--bot-id", BOT_ID, "--website-url", "https://signpost.example"]
    assert main(["teams", "package", *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"signpost: cannot write {out}: ") and err.count("\n") == 1, err
    assert "temporary name .teams.zip.partial is taken by a link" in err
    assert theirs.read_bytes() == b"" and not out.exists()
    assert (tmp_path / ".teams.zip.partial").is_symlink()  # left for the operator to look into


def test_every_bad_option_is_named_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two bad options named only the first: fixed, run again, the second was named (newcomer).
    Every value to fix is in the one line, as the missing bot id and website URL already were."""
    out = tmp_path / "teams.zip"
    args = ["--bot-id", BOT_ID, "--website-url", "https://s.example", "--privacy-url", "http://p.example"]
    args += ["--app-version", "1.0", "--developer-name", "D" * 33, "--app-id", "not-a-guid"]
    assert main(["teams", "package", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("signpost: cannot build the Teams package: ") and err.count("\n") == 1
    for said in ("privacy URL must start with https://", "1.2.3", "32", "Teams app id must be a GUID"):
        assert said in err, said
    assert "website URL" not in err and "terms URL" not in err
    assert not out.exists()


def test_a_website_url_wrong_is_named_once_not_again_for_the_urls_made_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The privacy and terms URLs default to the website's: one fix, so one problem named."""
    out = tmp_path / "teams.zip"
    assert main(["teams", "package", "--out", str(out), "--bot-id", "my-bot", "--website-url", "http://s.example"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "signpost: cannot build the Teams package: the bot id must be the Azure bot registration's app (client) id, "
        "a GUID; the website URL must start with https:// (Teams requires it)\n"
    )
