"""Feeds as a local authority's or an NHS trust's export writes them (Excel's "CSV UTF-8" with its
byte-order mark and CRLF, quoted fields, title-case headers, names of many origins), through the real
`signpost import`, and the children then found through the console as a practitioner types them.
What cannot be read is refused as one line saying where and what to do, quoting no child."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest

from tests.bot.cli.conftest import Cli
from tests.bot.console.test_stepup import secret_from
from tests.factories import (
    BEN,
    CHILDREN,
    CHILDREN_HEADER,
    INVOLVEMENTS,
    NO_INVOLVEMENTS,
    PRACTITIONERS,
    PRACTITIONERS_HEADER,
)

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
    enrolled = cli("totp", "enrol", "P102")
    code = pyotp.TOTP(secret_from(enrolled.out)).now()
    first, *rest = SEARCHES
    out = cli("console", "--as", "P102", stdin="\n".join([first, code, *rest]) + "\n").out
    found = re.findall(r"Signposts for (\d{3} \d{3} \d{4}): 1 involvement\.", out)
    assert [ref.replace(" ", "") for ref in found] == list(SEARCHES.values()), out
    assert 'Siobhán O’Neill — Social worker, children in need, Northshire "Healthy" Schools' in out


@pytest.mark.parametrize(
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


def test_roles_in_any_letter_case_are_roles(cli: Cli, tmp_path: Path) -> None:
    """A header in any case was read, and true and false in any case, but "Practitioner;
    Duty_Manager" was refused as holding a role that is not one."""
    text = PRACTITIONERS.replace("duty_manager;practitioner", "Duty_Manager; Practitioner").replace(
        ",admin\n", ",ADMIN\n"
    )
    imported = cli("import", str(write(tmp_path, "practitioners.csv", text)))
    assert imported.code == 0, imported.err


def test_roles_separated_by_commas_are_told_to_be_separated_by_semicolons(cli: Cli, tmp_path: Path) -> None:
    """The refusal says what to change, and never quotes the field (a row out of line puts a name there)."""
    text = PRACTITIONERS.replace("duty_manager;practitioner", '"duty_manager, practitioner"')
    assert problems(cli, write(tmp_path, "practitioners.csv", text)) == [
        "practitioners.csv:5: roles: holds a role that is not one of practitioner, duty_manager, admin "
        "(separate two roles with ;)"
    ]


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


@pytest.mark.parametrize(("separator", "called"), [("\t", "tabs"), (";", "semicolons"), ("|", "bars (|)")])
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


def test_a_windows_1252_file_is_refused_at_its_first_line_that_is_not_utf8(cli: Cli, tmp_path: Path) -> None:
    """Excel's plain "CSV" writes Windows-1252: Zoé's é is one byte. The line is named, not the name."""
    text = CHILDREN.replace("Amy,Jones", "Zoé,O’Neill")
    assert problems(cli, write(tmp_path, "children.csv", text, encoding="cp1252")) == [
        "children.csv:2: file: is not UTF-8 text from this line on (save the file as UTF-8 and import it again)"
    ]


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
    its line named."""
    one_name = CHILDREN.replace(",Ben,Okafor,", ",,Okafor,").replace(",Noah,Wells,", ",Noah,,")
    feeds = [write(tmp_path, "practitioners.csv", PRACTITIONERS), write(tmp_path, "children.csv", one_name)]
    feeds.append(
        write(tmp_path, "involvements.csv", INVOLVEMENTS + f"{NO_INVOLVEMENTS},P002,School nursing,2024-09-01,,false\n")
    )
    imported = cli("import", *map(str, feeds))
    assert imported.code == 0, imported.err
    enrolled = cli("totp", "enrol", "P003")
    code = pyotp.TOTP(secret_from(enrolled.out)).now()
    out = cli("console", "--as", "P003", stdin=f"Okafor 12/09/2016\n{code}\nNoah 29/02/2020 \n").out
    found = re.findall(r"Signposts for (\d{3} \d{3} \d{4}):", out)
    assert [ref.replace(" ", "") for ref in found] == [BEN, NO_INVOLVEMENTS], out
    nameless = one_name.replace(",Noah,,", ",,,")
    assert problems(cli, write(tmp_path, "children.csv", nameless)) == [
        "children.csv:7: family_name: is empty, and so is given_names: a child needs at least one name"
    ]


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
    enrolled = cli("totp", "enrol", "P003")
    code = pyotp.TOTP(secret_from(enrolled.out)).now()
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
