# ruff: noqa: RUF001  (look-alike characters are the point of this file)
"""Hypothesis strategies for hostile input: text no person should send, and requests no platform would."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from store.register.feeds import HEADERS
from tests.hostile.observe import identity_in

# Characters that have broken parsers elsewhere: superscripts and other non-ASCII digits (str.isdigit
# accepts them, int() does not), full-width forms, controls, bidi overrides and isolates, zero-width,
# combining marks, non-breaking and odd spaces, quotes, Slack's and Teams' markup characters.
SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
OTHER_DIGITS = "０１２３４５６７８９٠١٢٣٤٥٦٧٨٩०१२३४५६७८९①②③⑴"
UNICODE_DIGITS = SUPERSCRIPT_DIGITS + OTHER_DIGITS
CONTROLS = "".join(chr(c) for c in (*range(0x00, 0x20), 0x7F, 0x85))
BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
SPACES = "\u00a0\u2007\u202f\u3000\u2028\u2029\t\r\n"
MARKUP = "<>&*_~`|@!#$%^{}[]()\\/'\";:,.?=+-"
SNIPPETS = (
    "%s",
    "%d",
    "%n",
    "{0}",
    "{}",
    "{!r}",
    "{0.__class__}",
    "' OR 1=1 --",
    '" OR ""="',
    "'; DROP TABLE audit_events; --",
    "%",
    "_",
    "%_%",
    "\\",
    "\\x00",
    "NULL",
    "None",
    "undefined",
    "NaN",
    "-1",
    "0",
    "1e309",
    "99999999999999999999999999",
    "<@U0ADMIN>",
    "<!channel>",
    "<#C0001|general>",
    "<https://evil.example|click>",
    "[click](https://evil.example)",
    "<at>Signpost</at>",
    "<script>alert(1)</script>",
    "&amp;&lt;&gt;",
    "${jndi:ldap://x}",
    "../../etc/passwd",
    "\u202eevil",
    "Ω≈ç√∫",
    "👩‍👩‍👧‍👦",
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "R1",
    "P001",
    "999 000 0018",
    "9990000018",
    "9\u200b990000018",
)
ALPHABET = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(UNICODE_DIGITS + CONTROLS + BIDI + INVISIBLE + SPACES + MARKUP),
)


def _no_identity(text: str) -> bool:
    return identity_in(text) is None


token = st.one_of(
    st.text(ALPHABET, min_size=1, max_size=12),
    st.sampled_from(SNIPPETS),
    st.integers(-(10**20), 10**20).map(str),
)


def long_text(piece: st.SearchStrategy[str] = token) -> st.SearchStrategy[str]:
    """A 300,000-character text made of a repeated hostile piece."""
    return piece.filter(bool).map(lambda p: (p * (300_000 // len(p) + 1))[:300_000])


free_text = st.one_of(
    st.text(ALPHABET, max_size=80),
    st.lists(token, max_size=8).map(" ".join),
).filter(_no_identity)

# Every keyword command (handlers/help.py lists them for people; the Specs define them).
KEYWORDS = (
    "help",
    "home",
    "history",
    "enrol",
    "code",
    "register",
    "request",
    "approve",
    "deny",
    "pending",
    "unlink",
    "decommission",
    "relay",
    "reply",
    "message",
    "relays",
    "lead-notices",
)
# Argument counts each command does not take (junk arguments, so a right count could not succeed either).
WRONG_ARITY: dict[str, tuple[int, ...]] = {
    "home": (1, 2, 3),
    "history": (2, 3, 4),
    "enrol": (1, 2),
    "code": (0, 2, 3),
    "register": (0, 2, 3),
    "request": (0, 1),
    "approve": (0, 3, 4),
    "deny": (0,),
    "pending": (1, 2),
    "unlink": (0, 3, 4),
    "decommission": (0, 4, 5),
    "relay": (0, 2),
    "reply": (0, 1),
    "message": (0, 1),
    "relays": (1, 2),
    "lead-notices": (0, 3),
}
# Commands that change something: with junk arguments they must never report it done.
WRITES = frozenset(
    {"register", "request", "approve", "deny", "unlink", "decommission", "code", "reply", "message", "lead-notices"}
)


def _case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from((word, word.upper(), word.capitalize()))


@st.composite
def keyword_command(draw: st.DrawFn, words: st.SearchStrategy[str] = token) -> str:
    keyword = draw(st.sampled_from(KEYWORDS).flatmap(_case))
    args = draw(st.lists(words, max_size=5))
    return " ".join([keyword, *args])


@st.composite
def wrong_arity(draw: st.DrawFn) -> tuple[str, str]:
    keyword = draw(st.sampled_from(sorted(WRONG_ARITY)))
    n = draw(st.sampled_from(WRONG_ARITY[keyword]))
    junk = st.text(st.characters(codec="ascii", categories=["L", "P", "S"]), min_size=1, max_size=8)
    args = draw(st.lists(junk.filter(lambda t: not t.isdigit()), min_size=n, max_size=n))
    return keyword, " ".join([draw(_case(keyword)), *args])


hostile_text = st.one_of(free_text, keyword_command()).filter(_no_identity)

# -- the known defects' triggers, each for its own property -----------------------------------------

payload_text = (
    st.tuples(
        st.sampled_from(
            ("request 999 000 2231 check the {} of the referral", "help {}", "{}", "deny 1 {} please", "history {}")
        ),
        st.sampled_from(("payload", "PAYLOAD", "payload=[]", '{"payload": 1}', "payloads", "payload=null")),
        st.lists(token, max_size=3).map(" ".join),
    )
    .map(lambda t: f"{t[0].format(t[1])} {t[2]}".strip())
    .filter(_no_identity)
)

unusual_numbers = st.one_of(
    st.tuples(
        st.sampled_from(("history", "approve", "deny", "approve 1", "history 1")),
        st.text(st.sampled_from(UNICODE_DIGITS), min_size=1, max_size=4),
    ).map(" ".join),
    st.tuples(
        st.sampled_from(("Zed Quill", "Ora Vane")),
        st.integers(1, 28),
        st.integers(1, 12),
        st.integers(1, 999),
    ).map(lambda t: f"{t[0]} {t[1]:02d}/{t[2]:02d}/{t[3]:04d}"),
    st.tuples(
        st.sampled_from(("Zed Quill", "Ora Vane")), st.text(st.sampled_from(UNICODE_DIGITS + "/"), max_size=10)
    ).map(" ".join),
)

# Numbers no id, count, duration or date can hold: past 2**63 - 1 (the widest id column), past int()'s
# 4,300 digits, signed, in other notations, in other scripts' digits.
MAX_ID = 2**63 - 1
huge_number = st.one_of(
    st.integers(MAX_ID + 1, 10**40).map(str),
    st.integers(-(10**20), 0).map(str),
    st.sampled_from(
        (
            str(MAX_ID),
            str(MAX_ID + 1),
            str(2**64),
            "9" * 5000,
            "0" * 40 + "7",
            "1e309",
            "0x10",
            "1_000",
            "+7",
            "-0",
        )
    ),
    st.text(st.sampled_from(UNICODE_DIGITS), min_size=1, max_size=25),
)
# Every place a command reads a number a person typed, with {} for the number.
NUMERIC_SLOTS = (
    "relay {}",
    "reply {} thanks, please ring me",
    "approve {}",
    "approve R{}",
    "approve 1 {}d",
    "approve 1 {}h",
    "deny {} please ask the lead professional first",
    "deny R{}",
    "history {}",
    "request {} section 47 enquiry",
    "message {} please call me on 0161 496 0002",
    "decommission schedule {}/01/2030",
    "decommission schedule 01/01/{}",
    "Zed Quill {}/01/2014",
    "Zed Quill 01/{}/2014",
    "Zed Quill 01/01/{}",
    "Zed Quill {}-01-01",
    "{}",
)
numbers_in_every_slot = st.tuples(st.sampled_from(NUMERIC_SLOTS), huge_number).map(lambda t: t[0].format(t[1]))

# Characters that do not show as themselves wherever they stand (store.characters): controls but tab
# and line breaks, DEL, C1, bidi, zero-width and other format characters, private use, unassigned.
# (A joiner's showing depends on its neighbours, so it is not among them.) Lone surrogates can only
# arrive escaped in JSON (Teams, Slack's interactive payloads), never in a form-encoded slash command.
HIDDEN = (
    "".join(ch for ch in CONTROLS if ch not in "\t\n\r")
    + "\x7f\x9b"
    + BIDI
    + "\u200b\u2060\ufeff\u00ad\U000e0041\ue000\U0010fffd\u0378"
)
LONE_SURROGATES = "\ud800\udbff\udc00\udfff"


@st.composite
def hidden_command(draw: st.DrawFn, hidden: str = HIDDEN) -> str:
    """A command (any keyword, a reference, a search) with one hidden character somewhere in it."""
    text = draw(
        st.one_of(
            keyword_command(st.sampled_from(("1", "R1", "999 000 0018", "section 47 enquiry", "slack", "3d"))),
            st.sampled_from(("999 000 0018", "Zed Quill 01/01/2014", "help", "relay 1", "reply 1 ring me please")),
        )
    )
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(hidden)) + text[at:]


# -- Slack request pieces -------------------------------------------------------------------------

bad_timestamps = st.one_of(
    st.sampled_from(("abc", "", " ", "1.7e9", "NaN", "inf", "-1", "0x10", "١٧٠٠٠٠٠٠٠٠", "99999999999999999999999")),
    st.text(ALPHABET, max_size=20).filter(lambda t: not t.isascii() or not t.strip().isdigit()),
)
bad_signatures = st.one_of(
    st.sampled_from(("", "v0=", "v0=zz", "v1=00", "v0=é" + "0" * 63, "v0=" + "0" * 64)),
    st.text(ALPHABET, max_size=80),
)
# A child of the synthetic register (not the help text's worked example, which identity_in passes):
# put into any field of a platform's payload, it must never come back in a log line or an answer.
PASTED_CHILD = "Ben Okafor 20/01/2019 M8 1AA"
# Words a platform's payload holds in its fields: a field changed to one of these is well formed but
# in the wrong place (a view's type "home", a container's "message", a callback id of another view).
PAYLOAD_WORDS = (
    "",
    "home",
    "modal",
    "view",
    "message",
    "button",
    "signpost",
    "signpost_code",
    "signpost_input",
    "signpost_result",
    "block_actions",
    "view_submission",
    "view_closed",
    "app_home_opened",
    "event_callback",
    "personal",
    "channel",
    "invoke",
    "task/fetch",
    "task/submit",
    "adaptiveCard/action",
    "Action.Execute",
    "code",
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (a key of an object, an index of a list), outermost first."""
    found = [prefix] if prefix else []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        found += _paths(value, (*prefix, key))
    return found


@st.composite
def mutated(draw: st.DrawFn, doc: dict[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``doc`` (a payload a platform really sends) with one to three of its fields removed or given
    junk, a pasted child's identity, or another field's word; top-level ``keep`` fields untouched."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p in _paths(doc) if p[0] not in keep]
        if not places:
            break
        *outer, last = draw(st.sampled_from(places))
        holder: Any = doc
        for key in outer:
            holder = holder[key]
        if isinstance(holder, dict) and draw(st.booleans()):
            del holder[last]
            continue
        holder[last] = draw(
            st.one_of(
                json_junk,
                st.sampled_from(PAYLOAD_WORDS),
                st.just(PASTED_CHILD),
                st.just({"id": PASTED_CHILD}),
                st.just([PASTED_CHILD]),
            )
        )
    return doc


content_types = st.sampled_from(
    (
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded; charset=latin-1",
        "",
        "ßß/ßß",
    )
)
json_junk: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(ALPHABET, max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


junk_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        (
            b"payload=[]",
            b"payload=null",
            b"payload=%7B",
            b"payload=%FF%FE",
            b"payload=" + b"%5B" * 5000,
            b"\xff\xfe\x00",
            b"{",
            b'{"type": "event_callback", "event": ',
            _nested(100_000).encode(),
            b"command=/signpost&text=%FF&user_id=",
            b"ssl_check=1",
            b"type=url_verification&challenge=x",
        )
    ),
    json_junk.map(lambda doc: json.dumps(doc).encode()),
    json_junk.map(lambda doc: b"payload=" + json.dumps(doc).encode()),
)


# -- feed files for `signpost import` ---------------------------------------------------------------
# A small synthetic register whose identity values are the ones observe.py watches for (names,
# dates of birth, postcodes), so that any of them echoed by an import's problems or logs is a leak.
FEED_COLUMNS: dict[str, tuple[str, ...]] = {kind.value: columns for kind, columns in HEADERS.items()}
FEED_ROWS: dict[str, tuple[tuple[str, ...], ...]] = {
    kind: tuple(tuple(row.split(",")) for row in rows)
    for kind, rows in {
        "practitioners": (
            "H001,Noah,Wells,Nurse,Northshire NHS,Northshire,0161 496 0101,h1@nhs.example,practitioner",
            "H002,Mia,Stone,Teacher,Hill School,Northshire,0161 496 0102,h2@hill.example,practitioner",
            "H003,Ben,Okafor,Manager,Southvale CS,Southvale,0113 496 0103,h3@sv.example,duty_manager;practitioner",
        ),
        "children": (
            "9990000018,Amy,Jones,Amelia Jones;Amy Smith,2014-04-03,F,M1 2AB,Northshire,false",
            "9990000026,Ben,Okafor,,2016-09-12,M,M4 5CD,Northshire,false",
            "9990000034,Lily,Brown,,2019-01-20,F,M8 1AA,Southvale,true",
        ),
        "involvements": (
            "9990000018,H001,School nursing,2024-09-01,,true",
            "9990000018,H002,Education,2022-09-01,2024-07-20,false",
            "9990000026,H002,Education,2023-09-01,,false",
            "9990000034,H003,Health visiting,2020-01-01,,true",
        ),
    }.items()
}
# Column names a header may be given instead of its own: near misses, case, spaces, junk.
JUNK_COLUMNS = ("notes", "Start Date", "", " ", "ROLE", "role ", "child ref", "x\u202e", "given_name2", "dob", "é")


def _with_hidden(draw: st.DrawFn, value: str) -> str:
    at = draw(st.integers(0, len(value)))
    return value[:at] + draw(st.sampled_from(HIDDEN + SPACES + "\ufeff")) + value[at:]


@st.composite
def feed_value(draw: st.DrawFn, value: str) -> str:
    """A hostile replacement for one field's ``value``: too long, hidden characters, junk, dates
    that are no dates or in the future, huge references, or nothing."""
    way = draw(st.integers(0, 5))
    if way == 0:
        return "x" * draw(st.sampled_from((65, 201, 255, 2001, 140_000)))
    if way == 1:
        return value.upper()
    if way == 2:
        return draw(st.sampled_from(("", " ", "2019-02-30", "2014-13-01", "2099-01-01", "9" * 5000, "+ 44", "a;b")))
    if way == 3:
        return draw(st.sampled_from(SNIPPETS).filter(_no_identity))
    if way == 4:
        return draw(st.text(ALPHABET, max_size=30).filter(_no_identity))
    return _with_hidden(draw, value)


# Valid or hostile file names: long (up to the 255 bytes a Linux name may have), any script,
# spaces, quotes, a line break or direction override, bytes that are not UTF-8, a leading dash.
file_names = st.one_of(
    st.sampled_from(("feed.csv", "-dash.csv", "with space.csv", "quote'\".csv", "new\nline.csv", "\u202egnp.csv")),
    st.sampled_from(("café-ünïcødé.csv", "名前.csv", "😀.csv", "bad\udcff.csv", "tab\t.csv")),
    st.integers(150, 240).map(lambda n: "long-" + "y" * n + ".csv"),
    st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=40).map(
        lambda t: t + ".csv"
    ),
).filter(lambda name: _no_identity(name) and len(name.encode("utf-8", "surrogateescape")) <= 250)


@dataclass
class FeedFile:
    """One feed file as it will be written: a header, rows, and how its bytes are spelt."""

    kind: str
    header: list[str]
    rows: list[list[str]]
    bom: bool = False
    crlf: bool = False
    blank_lines: bool = False
    not_utf8: bool = False
    empty: bool = False

    def data(self) -> bytes:
        if self.empty:
            return b""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n" if self.crlf else "\n")
        writer.writerow(self.header)
        for row in self.rows:
            writer.writerow(row)
            if self.blank_lines:
                out.write("\r\n" if self.crlf else "\n")
        data = ("\ufeff" if self.bom else "").encode() + out.getvalue().encode("utf-8")
        if self.not_utf8:
            end = data.find(b"\n") + 1
            data = data[:end] + b"\xff\xfe" + data[end:]
        return data


@dataclass
class FeedImport:
    """The files of one `signpost import` (name, bytes), the order they are given in (a file may be
    given twice), whether every change made to the synthetic feeds keeps them good (so the import
    must succeed), and what was done to them."""

    files: list[tuple[str, bytes]]
    given: list[int]
    good: bool
    changes: list[str]

    def __repr__(self) -> str:  # what a failing example shows: the changes and the names, not 140 kB of rows
        return f"FeedImport(changes={self.changes}, names={[n for n, _ in self.files]!r}, given={self.given})"


# Changes that keep feeds good: columns in another order (rows too), rows split over two files, a
# byte-order mark, Windows line endings, blank lines, a file with its header alone.
GOOD_CHANGES = ("reorder", "split", "bom", "crlf", "blank_lines", "header_only_file")
BAD_CHANGES = (
    "shuffle_header",
    "rename_column",
    "drop_column",
    "extra_column",
    "repeat_column",
    "field",
    "field",
    "repeat_row",
    "copy_row_to_new_file",
    "give_twice",
    "empty_file",
    "not_utf8",
    "ragged",
)


def _change(draw: st.DrawFn, files: list[FeedFile], change: str) -> None:
    feed = draw(st.sampled_from(files))
    width = len(feed.header)
    column = draw(st.integers(0, width - 1))
    if change == "reorder":
        order = draw(st.permutations(range(width)))
        feed.header = [feed.header[i] for i in order]
        # A row made ragged by an earlier change keeps its missing or extra fields (still ragged).
        feed.rows = [[row[i] for i in order if i < len(row)] + row[width:] for row in feed.rows]
    elif change == "shuffle_header":
        order = draw(st.permutations(range(width)).filter(lambda o: [feed.header[i] for i in o] != feed.header))
        feed.header = [feed.header[i] for i in order]
    elif change in ("split", "copy_row_to_new_file", "header_only_file"):
        at = draw(st.integers(0, len(feed.rows)))
        rows = [] if change == "header_only_file" else feed.rows[at:]
        if change == "split":
            feed.rows = feed.rows[:at]
        elif change == "copy_row_to_new_file" and not rows:
            rows = feed.rows[-1:]
        files.append(FeedFile(feed.kind, list(feed.header), [list(row) for row in rows]))
    elif change in ("bom", "crlf", "blank_lines", "not_utf8", "empty"):
        setattr(feed, change, True)
    elif change == "empty_file":
        feed.empty = True
    elif change == "rename_column":
        feed.header[column] = draw(st.sampled_from(JUNK_COLUMNS))
    elif change == "drop_column":
        feed.header.pop(column)
        for row in feed.rows:
            if column < len(row):  # a ragged row may be short of it
                row.pop(column)
    elif change in ("extra_column", "repeat_column"):
        feed.header.append(draw(st.sampled_from(JUNK_COLUMNS)) if change == "extra_column" else feed.header[column])
        for row in feed.rows:
            row.append("x")
    elif change == "field" and feed.rows:
        row = draw(st.sampled_from(feed.rows))
        row[column] = draw(feed_value(row[column]))
    elif change == "repeat_row" and feed.rows:
        feed.rows.append(list(draw(st.sampled_from(feed.rows))))
    elif change == "ragged" and feed.rows:
        row = draw(st.sampled_from(feed.rows))
        row[:] = row[:-1] if draw(st.booleans()) else [*row, "x"]


@st.composite
def feed_import(draw: st.DrawFn) -> FeedImport:
    """The three synthetic feeds, in any order, each change drawn applied to one of the files."""
    kinds = draw(st.permutations(sorted(FEED_COLUMNS)))
    files = [FeedFile(kind, list(FEED_COLUMNS[kind]), [list(row) for row in FEED_ROWS[kind]]) for kind in kinds]
    changes = draw(st.lists(st.sampled_from(GOOD_CHANGES + BAD_CHANGES), max_size=3))
    twice = False
    for change in changes:
        if change == "give_twice":
            twice = True
        else:
            _change(draw, files, change)
    names = draw(st.lists(file_names, min_size=len(files), max_size=len(files), unique_by=str.casefold))
    given = list(range(len(files)))
    if twice:
        given.insert(draw(st.integers(0, len(given))), draw(st.sampled_from(given)))
    good = all(change in GOOD_CHANGES for change in changes)
    return FeedImport([(name, feed.data()) for name, feed in zip(names, files, strict=True)], given, good, changes)
