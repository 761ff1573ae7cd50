"""Feeds as a local authority's or an NHS trust's export writes them (Excel's "CSV UTF-8" with its
byte-order mark and CRLF, quoted fields, title-case headers, names of many origins), through the real
`signpost import`, and the children then found through the console as a practitioner types them.
What cannot be read is refused as one line saying where and what to do, quoting no child."""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from pathlib import Path

import pyotp

from store.register.refs import check_digit
from tests.bot.cli.conftest import Cli
from tests.factories import (
    AMY,
    BEN,
    CHILDREN,
    CHILDREN_HEADER,
    INVOLVEMENTS,
    INVOLVEMENTS_HEADER,
    NO_INVOLVEMENTS,
    PRACTITIONERS,
    PRACTITIONERS_HEADER,
    TWIN_A,
)
from tests.spread import either_store, spread

# Each test marked either_store below is about how an export is read (its encoding, lines, quotes,
# columns and cells) and refused, before the store is reached: one store shows it (tests/spread.py).
# Those that then find a child through the store, or compare a row with what the store keeps of it
# ("0 new or changed"), run on both.

SEAN, ZOE, LUKASZ = "9993000000", "9993000019", "9993000027"
EXPORT_PRACTITIONERS = (
    "\ufeff"
    + PRACTITIONERS_HEADER.upper().replace(",", " , ")
    + "\r\n"
    + 'P101,Siobhán,O’Neill,"Social worker, children in need","Northshire ""Healthy"" Schools",Northshire,'
    + "+44 (0)161 496 0101,siobhan.oneill@northshire.example,practitioner\r\n"
    + "P102,Dai,ap Rhys,School nurse,Northshire NHS,Northshire,0161 496 0102,dai.aprhys@nhs.example,practitioner"
)  # no line break after the last row, as Excel writes none
EXPORT_CHILDREN = (
    "\ufeff"
    + CHILDREN_HEADER
    + "\r\n"
    + f"{SEAN},Seán Patrick,O’Neill,Sean O'Neil;Shaun Oneill,2016-07-08,m,m11ae,Northshire,FALSE\r\n"
    + f"{ZOE},Zoë,Smith-Jones,,2015-03-04,F,  m1   1ae ,Northshire,False\r\n"
    + f'{LUKASZ},Łukasz,Wiśniewski,"",2014-01-02,M,,Northshire,false\r\n'
    + ",,,,,,,,\r\n"
)
EXPORT_INVOLVEMENTS = "child_ref,practitioner_id,service,started,ended,lead_professional\n" + "".join(
    f"{ref},P101,Children's social care,2024-01-10,,TRUE\n" for ref in (SEAN, ZOE, LUKASZ)
)
SEARCHES = {
    "Sean O'Neill 08/07/2016": SEAN,
    "Seán O’Neill 08/07/2016": SEAN,
    "Zoe Smith Jones 04/03/2015 M1 1AE": ZOE,
    "zoe smith-jones 2015-03-04": ZOE,
    "Lukasz Wisniewski 02/01/2014": LUKASZ,
}


def write(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp / name
    path.write_bytes(text.encode(encoding))
    return path


def problems(cli: Cli, *paths: Path) -> list[str]:
    """The problem lines of an import that imported nothing (exit status 1)."""
    result = cli("import", *map(str, paths))
    assert result.code == 1 and "Traceback" not in result.err, result.err
    lines = result.said.splitlines()
    assert lines[-1].startswith("Nothing was imported:")
    return [line for line in lines if re.match(r"[\w.]+:\d+: ", line)]


def test_an_export_as_excel_writes_it_imports_and_its_children_are_found_as_typed(cli: Cli, tmp_path: Path) -> None:
    """A byte-order mark, CRLF, no line break at the end, an upper-case header with spaces, quoted
    commas and quotes, curly apostrophes, lower-case postcodes without or with extra spaces, TRUE and
    False, a row of empty cells: each imports, and each child is found as a practitioner types them."""
    feeds = [
        write(tmp_path, "practitioners.csv", EXPORT_PRACTITIONERS),
        write(tmp_path, "children.csv", EXPORT_CHILDREN),
        write(tmp_path, "involvements.csv", EXPORT_INVOLVEMENTS),
    ]
    imported = cli("import", *map(str, feeds))
    assert imported.code == 0, imported.err
    assert imported.out.splitlines() == [
        "practitioners: 2 rows read, 2 new or changed",
        "children: 3 rows read, 3 new or changed",
        "involvements: 3 rows read, 3 new or changed",
    ]
    code = pyotp.TOTP(cli.enrol("P102")).now()
    first, *rest = SEARCHES
    out = cli("console", "--as", "P102", stdin="\n".join([first, code, *rest]) + "\n").out
    found = re.findall(r"Signposts for (\d{3} \d{3} \d{4}): 1 involvement\.", out)
    assert [ref.replace(" ", "") for ref in found] == list(SEARCHES.values()), out
    assert 'Siobhán O’Neill — Social worker, children in need, Northshire "Healthy" Schools' in out


@spread(
    "header",
    [
        "Child Ref,Given Names,Family Name,Aliases,Date of Birth,Sex,Postcode,Local Authority,Shielded",
        "child-ref,given-names,family-name,aliases,date-of-birth,sex,postcode,local-authority,shielded",
        "\ufeff" + CHILDREN_HEADER,  # a second byte-order mark: a file saved as UTF-8 twice
    ],
)
def test_a_header_spelt_with_spaces_hyphens_or_a_second_mark_is_the_feed_it_names(
    cli: Cli, tmp_path: Path, header: str
) -> None:
    """Exports title their columns for people ("Date of Birth"): each was "not a known feed", with
    child_ref missing and a column "whose name is not a column name"."""
    text = "\ufeff" + CHILDREN.replace(CHILDREN_HEADER, header)
    imported = cli("import", str(write(tmp_path, "children.csv", text)))
    assert imported.code == 0, imported.err
    assert imported.out.splitlines()[0] == "children: 6 rows read, 6 new or changed"


@either_store
def test_roles_in_any_letter_case_are_roles(cli: Cli, tmp_path: Path) -> None:
    """A header in any case was read, and true and false in any case, but "Practitioner;
    Duty_Manager" was refused as holding a role that is not one."""
    text = PRACTITIONERS.replace("duty_manager;practitioner", "Duty_Manager; Practitioner").replace(
        ",admin\n", ",ADMIN\n"
    )
    imported = cli("import", str(write(tmp_path, "practitioners.csv", text)))
    assert imported.code == 0, imported.err


@either_store
def test_roles_separated_by_commas_are_told_to_be_separated_by_semicolons(cli: Cli, tmp_path: Path) -> None:
    """The refusal says what to change, and never quotes the field (a row out of line puts a name there)."""
    text = PRACTITIONERS.replace("duty_manager;practitioner", '"duty_manager, practitioner"')
    assert problems(cli, write(tmp_path, "practitioners.csv", text)) == [
        "practitioners.csv:5: roles: holds a role that is not one of practitioner, duty_manager, admin "
        "(separate two roles with ;)"
    ]


@either_store
def test_an_unclosed_quote_says_where_its_field_runs_to(cli: Cli, tmp_path: Path) -> None:
    """A quote never closed reads every line after it as one field: the problem said only that line 3
    "has 2 fields, expected 9", which a person reading line 3 (nine fields) could not see."""
    lines = CHILDREN.splitlines()
    lines[2] = lines[2].replace(",Ben,", ',"Ben,')
    text = "\n".join(lines) + "\n"
    assert problems(cli, write(tmp_path, "children.csv", text)) == [
        "children.csv:3: row: has 2 fields, expected 9: a quoted field that opens on this line runs on to "
        "line 7 (is its closing quote missing?)"
    ]


@spread("separator, called", [("\t", "tabs"), (";", "semicolons"), ("|", "bars (|)")])
def test_a_file_separated_by_another_character_is_told_to_be_saved_as_csv(
    cli: Cli, tmp_path: Path, separator: str, called: str
) -> None:
    """Excel's "Text (Tab delimited)", or a CSV from a European locale, was answered with the three
    headers Signpost reads, which the file's header already was."""
    text = CHILDREN.replace(",", separator)
    assert problems(cli, write(tmp_path, "children.csv", text)) == [
        f"children.csv:1: header: its columns are separated by {called}, not commas: "
        "save the file as CSV (comma-separated) and import it again"
    ]


@either_store
def test_a_windows_1252_file_is_refused_at_its_first_line_that_is_not_utf8(cli: Cli, tmp_path: Path) -> None:
    """Excel's plain "CSV" writes Windows-1252: Zoé's é is one byte. The line is named, not the name."""
    text = CHILDREN.replace("Amy,Jones", "Zoé,O’Neill")
    assert problems(cli, write(tmp_path, "children.csv", text, encoding="cp1252")) == [
        "children.csv:2: file: is not UTF-8 text from this line on (save the file as UTF-8 and import it again)"
    ]


@either_store
def test_a_comma_at_the_end_of_every_line_is_an_empty_column_with_no_name(cli: Cli, tmp_path: Path) -> None:
    """Excel writes a comma after each line's last field when a column past the data was ever used:
    the header was "not a known feed: unknown (an empty name)". A value under that column is a
    problem of its row, never quoted."""
    lines = [line + "," for line in CHILDREN.splitlines()]
    imported = cli("import", str(write(tmp_path, "children.csv", "\r\n".join(lines) + "\r\n")))
    assert imported.code == 0, imported.err
    assert imported.out.splitlines()[0] == "children: 6 rows read, 6 new or changed"
    lines[3] += "Stone"
    assert problems(cli, write(tmp_path, "children.csv", "\n".join(lines) + "\n")) == [
        "children.csv:4: row: holds a value after its last column, under the header's column with no name"
    ]


def test_a_child_with_one_name_only_is_imported_and_found_by_it(cli: Cli, tmp_path: Path) -> None:
    """A child known by one name (the NHS records it as the family name; some exports put it under
    the given names) was refused as "is empty": a refusal nothing in the feed could answer, and one
    that held back every other row of the national feed. A row with no name at all is still refused,
    its line named. A child known by her family name alone is not accepted by it and her birthday
    without her full postcode (issue 16: a family name and a birthday are a guess at any child of that
    name): the answer asks for the names, and her reference finds her."""
    one_name = CHILDREN.replace(",Ben,Okafor,", ",,Okafor,").replace(",Noah,Wells,", ",Noah,,")
    feeds = [write(tmp_path, "practitioners.csv", PRACTITIONERS), write(tmp_path, "children.csv", one_name)]
    feeds.append(
        write(tmp_path, "involvements.csv", INVOLVEMENTS + f"{NO_INVOLVEMENTS},P002,School nursing,2024-09-01,,false\n")
    )
    imported = cli("import", *map(str, feeds))
    assert imported.code == 0, imported.err
    code = pyotp.TOTP(cli.enrol("P003")).now()
    out = cli("console", "--as", "P003", stdin=f"Okafor 12/09/2016\n{code}\nNoah 29/02/2020 \n{BEN}\n").out
    found = re.findall(r"Signposts for (\d{3} \d{3} \d{4}):", out)
    assert [ref.replace(" ", "") for ref in found] == [NO_INVOLVEMENTS, BEN], out
    assert "No record matches those details for certain" in out and "given and family" in out, out
    nameless = one_name.replace(",Noah,,", ",,,")
    assert problems(cli, write(tmp_path, "children.csv", nameless)) == [
        "children.csv:7: family_name: is empty, and so is given_names: a child needs at least one name"
    ]


@either_store
def test_aliases_separated_by_commas_are_refused_and_told_to_be_separated_by_semicolons(
    cli: Cli, tmp_path: Path
) -> None:
    """Aliases typed "Amelia Jones, Amy Smith" were imported as one alias, so neither name ever found Amy. The
    refusal names the line and the column, says what to change, and quotes no alias; the
    practitioners given with it are not imported either (all or nothing)."""
    text = CHILDREN.replace("Amelia Jones;Amy Smith", '"Amelia Jones, Amy Smith"')
    feeds = [write(tmp_path, "practitioners.csv", PRACTITIONERS), write(tmp_path, "children.csv", text)]
    assert problems(cli, *feeds) == ["children.csv:2: aliases: holds a comma (separate two aliases with ;)"]
    imported = cli("import", str(feeds[0]))
    assert imported.code == 0, imported.err
    assert imported.out.splitlines()[0] == "practitioners: 6 rows read, 6 new or changed"


def test_a_practitioner_with_a_phone_or_an_email_only_is_imported_and_signposted_by_it(
    cli: Cli, tmp_path: Path
) -> None:
    """A practitioner with no phone, or no email, was refused as "is empty", and held back every
    other row: a signpost needs one way to reach them, not both. The signpost shows what there is,
    with no "None" or empty separator; a row with neither is refused, saying why (all or nothing)."""
    text = PRACTITIONERS.replace(",0161 496 0001,", ",,").replace(",priya.shah@nhs.example,", ",,")
    feeds = [write(tmp_path, "practitioners.csv", text), write(tmp_path, "children.csv", CHILDREN)]
    feeds.append(write(tmp_path, "involvements.csv", INVOLVEMENTS))
    imported = cli("import", *map(str, feeds))
    assert imported.code == 0, imported.err
    code = pyotp.TOTP(cli.enrol("P003")).now()
    out = cli("console", "--as", "P003", stdin=f"Amy Jones 03/04/2014\n{code}\n").out
    lines = out.splitlines()
    assert "    sam.carter@northshire.example" in lines, out
    assert "    0161 496 0002" in lines, out
    assert "None" not in out
    assert not [line for line in lines if line.strip().startswith("·") or line.rstrip().endswith("·")], out
    unreachable = text.replace(",0161 496 0200,alex.kim@signpost.example,", ",,,")
    feeds[0] = write(tmp_path, "practitioners.csv", unreachable)
    assert problems(cli, *feeds) == [
        "practitioners.csv:6: phone: is empty, and so is email: a signpost needs a phone or an email "
        "to reach the practitioner by (give at least one)"
    ]


def imported_as_standard(cli: Cli, tmp_path: Path, text: str) -> None:
    """``text`` imports, and the standard children feed then changes nothing: every field was read
    as the standard feed writes it (a date of birth read otherwise re-seals the child)."""
    imported = cli("import", str(write(tmp_path, "children.csv", text)))
    assert imported.code == 0, imported.err
    assert imported.out.splitlines()[0] == "children: 6 rows read, 6 new or changed"
    again = cli("import", str(write(tmp_path, "children.csv", CHILDREN)))
    assert again.code == 0, again.err
    assert again.out.splitlines()[0] == "children: 6 rows read, 0 new or changed"


@spread("encoding, mark", [("utf-16-le", "\ufeff"), ("utf-16-be", "\ufeff"), ("utf-16-le", "")])
def test_a_utf16_file_is_refused_in_one_line_saying_to_save_it_as_csv_utf8(
    cli: Cli, tmp_path: Path, encoding: str, mark: str
) -> None:
    """Excel's "Unicode Text" (and PowerShell's -Encoding Unicode) write UTF-16: it was told it was
    not UTF-8 and, on the same line, that its header was no feed's, listing the three headers."""
    text = mark + CHILDREN.replace("Amy,Jones", "Zoé,Jones")
    assert problems(cli, write(tmp_path, "children.csv", text, encoding=encoding)) == [
        'children.csv:1: file: is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8: '
        'save it as "CSV UTF-8 (Comma delimited)" and import it again'
    ]


@either_store
def test_an_empty_file_is_told_it_is_empty(cli: Cli, tmp_path: Path) -> None:
    """An empty file (or one of blank lines, or a byte-order mark alone) was answered with the three
    headers Signpost reads, as if its header were wrong. A header with no rows imports nothing."""
    for text in ("", "\ufeff", "\r\n\r\n"):
        assert problems(cli, write(tmp_path, "children.csv", text)) == [
            "children.csv:1: file: is empty: a feed is its header row, then its rows (export it again)"
        ]
    imported = cli("import", str(write(tmp_path, "children.csv", CHILDREN_HEADER + "\r\n")))
    assert imported.code == 0, imported.err
    assert imported.out.splitlines()[0] == "children: 0 rows read, 0 new or changed"


def test_exports_joined_into_one_file_read_each_part_by_its_own_header(cli: Cli, tmp_path: Path) -> None:
    """Two exports joined (``cat a.csv b.csv``) repeat the header between their rows, the second
    maybe in another column order or with its own byte-order mark: each of its cells was a problem
    of that line (five, none saying why). Zero-width characters around a header's names are no part
    of them."""
    header, *rows = CHILDREN.splitlines()
    reordered = [",".join(reversed(line.split(","))) for line in [header, *rows[3:]]]
    text = "\r\n".join(["\u200b" + header, *rows[:3], header, "\ufeff" + reordered[0], *reordered[1:]]) + "\r\n"
    imported_as_standard(cli, tmp_path, text)


def test_child_references_a_spreadsheet_kept_as_text_are_read(cli: Cli, tmp_path: Path) -> None:
    """A reference written '9990000018 (a spreadsheet's mark for text) or ="9990000018" (an export
    meant for Excel), or with no-break spaces between its digits, is that reference."""
    text = (
        CHILDREN.replace(f"{AMY},", f"'{AMY},")
        .replace(f"{BEN},", f'="{BEN}",')
        .replace(f"{TWIN_A},", f"{TWIN_A[:3]}\u00a0{TWIN_A[3:6]}\u00a0{TWIN_A[6:]},")
    )
    imported_as_standard(cli, tmp_path, text)


@either_store
def test_child_references_a_spreadsheet_damaged_are_refused_saying_what_to_do(cli: Cli, tmp_path: Path) -> None:
    """A reference that lost its leading zeros (Excel reads it as a number) could as well have lost
    any other digit, and one in scientific notation has lost its last digits: each was "not ten
    digits" or "check digit fails", which said nothing of the spreadsheet that did it. Nothing is
    imported, the practitioners given with them neither."""
    ref = next(
        f"{serial:09d}{digit}"
        for serial in range(1234567, 1234600)
        if (digit := check_digit(f"{serial:09d}")) is not None
    )
    assert ref.startswith("00") and ref[2] != "0"  # as Excel reads it: eight digits
    text = CHILDREN.replace(AMY, ref.lstrip("0")).replace(BEN, "9.99E+09")
    links = f"{INVOLVEMENTS_HEADER}\n{ref.lstrip('0')},P001,Children's social care,2025-01-10,,true\n"
    feeds = [
        write(tmp_path, "practitioners.csv", PRACTITIONERS),
        write(tmp_path, "children.csv", text),
        write(tmp_path, "involvements.csv", links),
    ]
    lost = (
        "has {n} digits, not 10: if a spreadsheet dropped its leading zeros, format the column as text, "
        "write them back and export again"
    )
    assert problems(cli, *feeds) == [
        f"children.csv:2: child_ref: {lost.format(n=8)}",
        "children.csv:3: child_ref: is a number in scientific notation (as a spreadsheet shows a long number), "
        "its last digits lost: format the column as text and export again from the source",
        f"involvements.csv:2: child_ref: {lost.format(n=8)}",
    ]
    imported = cli("import", str(feeds[0]))
    assert imported.out.splitlines()[0] == "practitioners: 6 rows read, 6 new or changed"


@spread(
    "day",
    [
        "2014-04-03 00:00:00",
        "2014-04-03T00:00:00",
        "2014-04-03 00:00",
        "2014/04/03",
        "'2014-04-03",
        "03-Apr-2014",
        "3 April 2014",
        "03/APR/2014",
    ],
)
def test_a_date_in_a_form_that_can_be_read_one_way_only_is_read(cli: Cli, tmp_path: Path, day: str) -> None:
    """A database export's midnight time, year first with slashes, a month by its name: each was
    "not a date in YYYY-MM-DD form", though it can mean one day only."""
    imported_as_standard(cli, tmp_path, CHILDREN.replace("2014-04-03", day))


AMBIGUOUS = "has its day and month in digits, in an order the file does not say (day/month/year or month/day/year?)"


@spread(
    "day, why",
    [
        ("41732", "is a number (a spreadsheet's serial number for a date), not a date"),
        ("3/4/2014", AMBIGUOUS),
        ("03.04.2014", AMBIGUOUS),
        ("03-04-2014", AMBIGUOUS),
        ("4/13/2014", AMBIGUOUS),  # month first: a file of them holds 4/12/2014 too
        ("03-Apr-14", "has a year of two digits"),
        ("2014-04-03T23:00:00Z", "has a time of day (a time zone may have moved its date)"),
        ("2014-04-03 13:45", "has a time of day (a time zone may have moved its date)"),
    ],
)
def test_a_date_that_could_be_read_wrongly_is_refused_saying_what_to_do(
    cli: Cli, tmp_path: Path, day: str, why: str
) -> None:
    """A wrong date of birth finds no child: each is refused with its line, its column and what to
    change, quoting no date."""
    text = CHILDREN.replace("2014-04-03", day)
    links = INVOLVEMENTS.replace("2024-09-01", day)
    feeds = [
        write(tmp_path, name, feed)
        for name, feed in [("practitioners.csv", PRACTITIONERS), ("children.csv", text), ("involvements.csv", links)]
    ]
    write_it = "write dates YYYY-MM-DD (in a spreadsheet, format the column as yyyy-mm-dd) and export again"
    said = problems(cli, *feeds)
    assert said == [
        f"children.csv:2: date_of_birth: {why}: {write_it}",
        f"involvements.csv:3: started: {why}: {write_it}",
    ]
    assert day not in "\n".join(said)


def test_phone_numbers_a_spreadsheet_kept_as_text_are_read_and_damaged_ones_refused(cli: Cli, tmp_path: Path) -> None:
    """'0161 496 0001 (text in a spreadsheet) and no-break spaces are read; a number that lost its
    leading 0 (stored silently, it rang nobody) or was shown in scientific notation is refused."""
    text = PRACTITIONERS.replace("0161 496 0001", "'0161 496 0001").replace("0161 496 0002", "0161\u00a0496\u00a00002")
    imported = cli("import", str(write(tmp_path, "practitioners.csv", text)))
    assert imported.code == 0, imported.err
    again = cli("import", str(write(tmp_path, "practitioners.csv", PRACTITIONERS)))
    assert again.out.splitlines()[0] == "practitioners: 6 rows read, 0 new or changed"
    damaged = PRACTITIONERS.replace("0161 496 0001", "1614960001").replace("0161 496 0002", "1.61496E+09")
    assert problems(cli, write(tmp_path, "practitioners.csv", damaged)) == [
        "practitioners.csv:2: phone: has no leading 0 or +: if a spreadsheet dropped its leading 0, "
        "format the column as text, write it back and export again",
        "practitioners.csv:3: phone: is a number in scientific notation (as a spreadsheet shows a long number), "
        "its last digits lost: format the column as text and export again from the source",
    ]


def test_a_file_with_carriage_returns_alone_as_old_excel_saves_it_is_read(cli: Cli, tmp_path: Path) -> None:
    """Excel's "CSV (Macintosh)" ends each line with a carriage return alone: it was refused whole
    ("save the file with Windows or Unix line endings"), though its lines can be read one way only."""
    imported_as_standard(cli, tmp_path, CHILDREN.replace("\n", "\r"))
    bad = CHILDREN.replace("\n", "\r").replace("2016-09-12", "2016-09-31")
    assert problems(cli, write(tmp_path, "children.csv", bad)) == ["children.csv:3: date_of_birth: is not a real date"]


@either_store
def test_a_carriage_return_alone_in_a_file_of_line_feeds_is_still_refused(cli: Cli, tmp_path: Path) -> None:
    """A file whose lines end otherwise but holds a carriage return alone between its fields cannot be
    read one way only: refused, quoting nothing."""
    mixed = CHILDREN.replace(f"\n{BEN}", f"\r{BEN}")
    [said] = problems(cli, write(tmp_path, "children.csv", mixed))
    assert said.startswith("children.csv:2: row: cannot be read as CSV (lines ending in a carriage return alone")


@spread("before", ["\n", "\r\n\r\n", "  \n", ",,,,,,,,\r\n"])
def test_blank_lines_before_the_header_are_skipped(cli: Cli, tmp_path: Path, before: str) -> None:
    """An export with an empty line (or a row of empty cells) above its header was told its header was
    no feed's; problems still name the file's own lines."""
    imported_as_standard(cli, tmp_path, before + CHILDREN)
    bad = before + CHILDREN.replace("M4 5CD", "M4 5C")
    line = 3 + before.count("\n")
    assert problems(cli, write(tmp_path, "children.csv", bad)) == [
        f"children.csv:{line}: postcode: is not a UK postcode"
    ]


@spread("yes, no", [("yes", "no"), ("Y", "n"), ("1", "0"), ("TRUE", "False"), ("Yes", "NO"), ("y", "N")])
def test_shielded_written_yes_no_or_1_0_is_read(cli: Cli, tmp_path: Path, yes: str, no: str) -> None:
    """A spreadsheet's yes/no, y/n or 1/0 column means one thing only: it was refused row by row."""
    imported_as_standard(cli, tmp_path, CHILDREN.replace(",true\n", f",{yes}\n").replace(",false\n", f",{no}\n"))
    links = INVOLVEMENTS.replace(",true\n", f",{yes}\n").replace(",false\n", f",{no}\n")
    feeds = [write(tmp_path, "practitioners.csv", PRACTITIONERS), write(tmp_path, "involvements.csv", links)]
    imported = cli("import", *map(str, feeds))
    assert imported.code == 0, imported.err
    again = cli("import", str(write(tmp_path, "involvements.csv", INVOLVEMENTS)))
    assert again.out.splitlines()[0] == "involvements: 5 rows read, 0 new or changed"


@spread("value", ["maybe", "-1", "2", "on", "ja", "yes please"])
def test_shielded_written_any_other_way_is_refused_quoting_nothing(cli: Cli, tmp_path: Path, value: str) -> None:
    said = problems(cli, write(tmp_path, "children.csv", CHILDREN.replace(",true\n", f",{value}\n")))
    assert said == ["children.csv:6: shielded: must be true or false (or yes/no, 1/0)"]


@spread("encoding, mark", [("utf-32-le", "\ufeff"), ("utf-32-be", "\ufeff"), ("utf-32-le", ""), ("utf-32-be", "")])
def test_a_utf32_file_is_called_utf32_not_utf16(cli: Cli, tmp_path: Path, encoding: str, mark: str) -> None:
    """A UTF-32 file (its mark begins as UTF-16's does, and it holds NUL bytes too) was told it was UTF-16."""
    text = mark + CHILDREN.replace("Amy,Jones", "Zoé,Jones")
    assert problems(cli, write(tmp_path, "children.csv", text, encoding=encoding)) == [
        'children.csv:1: file: is UTF-32 text, not UTF-8: save it as "CSV UTF-8 (Comma delimited)" and import it again'
    ]


def _workbook() -> bytes:
    """An .xlsx as Excel saves it: a zip whose first entry is stored (its header's sizes hold NULs)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
    return out.getvalue()


NOT_CSV = {
    "an Excel workbook": (_workbook(), "is a zip file (an Excel workbook, .xlsx?), not CSV: "),
    "an Excel 97-2003 workbook": (
        bytes.fromhex("d0cf11e0a1b11ae1") + bytes(512),
        "is an Excel 97-2003 workbook (.xls), not CSV: ",
    ),
    "a gzip-compressed feed": (
        gzip.compress(CHILDREN.encode(), mtime=0),
        "is compressed (gzip), not CSV: decompress it (gunzip FILE) and import the file that gives",
    ),
    "other bytes": (bytes(range(256)) * 4, "is not text (it holds NUL bytes: a binary file?), not CSV: "),
}


@spread("data, said", NOT_CSV)
def test_a_workbook_an_archive_or_binary_bytes_are_called_what_they_are_not_utf16(
    cli: Cli, tmp_path: Path, data: bytes, said: str
) -> None:
    """An .xlsx given for its CSV export, a feed still gzipped, or any file with NUL bytes in its first
    line was told it was UTF-16 or UTF-32 text (newcomer): one problem naming what it is, and how to
    make a feed of it; nothing imported."""
    path = tmp_path / "children.csv"
    path.write_bytes(data)
    expected = said + ('save it as "CSV UTF-8 (Comma delimited)" and import it again' if said.endswith(": ") else "")
    assert problems(cli, path) == [f"children.csv:1: file: {expected}"]


@spread("encoding", ["utf-16-be", "utf-16-le"])
def test_utf16_without_a_mark_is_still_called_utf16(cli: Cli, tmp_path: Path, encoding: str) -> None:
    """Telling binary bytes from text without a byte-order mark keeps UTF-16 text recognised as such."""
    assert problems(cli, write(tmp_path, "children.csv", CHILDREN, encoding=encoding)) == [
        'children.csv:1: file: is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8: '
        'save it as "CSV UTF-8 (Comma delimited)" and import it again'
    ]
