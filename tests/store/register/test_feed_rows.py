"""The rows an import's progress total counts in a feed (``feed_rows``, read in blocks): its CSV
records as the import's csv module reads them, never its lines."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from store.register.feeds import BLOCK, FeedKind, feed_rows
from tests.factories import INVOLVEMENTS_HEADER

ROW = "9990001006,NS-P0012,{service},2013-05-05,,true"


def rows_read(path: Path) -> int:
    """The data rows Python's csv module reads in the file, as the import reads it (newline="")."""
    with path.open(encoding="utf-8", newline="") as handle:
        return sum(1 for values in list(csv.reader(handle))[1:] if any(v.strip() for v in values))


@pytest.mark.parametrize(
    ("services", "rows"),
    [
        (['"Health\nvisiting"', '"Education\r\n"', "Youth justice"], 3),
        (['"Health\n\nvisiting"', '"\n",x', "Education"], 3),  # a blank line, and one beginning with a quote
        (['"a ""quoted"" word\n"', '"a quote at the end of the break ""\n"'], 2),
        (['O"Brien', '12" ruler', "Education"], 3),  # a quote inside a field that did not begin with one
        (['"closed"then"open', "Education", '"Health"'], 3),  # after its closing quote a field is unquoted
        # a stray quote, then a quoted field on its line or running on over lines, in turn
        (['O"Brien', '"Health\nvisiting"', 'x","y\nz"', '12" ruler,"a ""b"""', '"a"b"c', 'O"Brien'], 6),
    ],
    ids=[
        "line breaks",
        "blank or quoted lines inside",
        "doubled quotes",
        "stray quotes",
        "quote after closing",
        "stray quotes among quoted fields",
    ],
)
def test_a_row_is_counted_once_whatever_its_quoted_fields_hold(tmp_path: Path, services: list[str], rows: int) -> None:
    path = tmp_path / "involvements.csv"
    lines = [INVOLVEMENTS_HEADER, *(ROW.format(service=service) for service in services)]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8", newline="")
    assert rows_read(path) == rows
    assert feed_rows([path], FeedKind.INVOLVEMENTS) == rows


def test_a_quoted_field_across_the_blocks_read_is_one_row(tmp_path: Path) -> None:
    """The count reads a block at a time: a field whose line breaks fall on either side of a block's
    end is still one row, and so is one whose quote closes at the end of the file without a break."""
    path = tmp_path / "involvements.csv"
    plain = ROW.format(service="Education") + "\n"
    many = (BLOCK - len(INVOLVEMENTS_HEADER)) // len(plain) - 1
    text = INVOLVEMENTS_HEADER + "\n" + plain * many + ROW.format(service='"Health\n' + "\n" * 100 + 'visiting"') + "\n"
    path.write_text(text + ROW.format(service='"Education\n"'), encoding="utf-8", newline="")
    assert text.index('"Health') < BLOCK < text.index('visiting"')
    assert rows_read(path) == many + 2
    assert feed_rows([path], FeedKind.INVOLVEMENTS) == many + 2


def test_a_quote_never_closed_ends_its_row_at_the_end_of_the_file(tmp_path: Path) -> None:
    """The csv module reads an unclosed quoted field to the end of the file: one row, not one a line."""
    path = tmp_path / "involvements.csv"
    lines = [INVOLVEMENTS_HEADER, ROW.format(service="Education"), ROW.format(service='"Health'), "visiting", "x"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert rows_read(path) == 2
    assert feed_rows([path], FeedKind.INVOLVEMENTS) == 2


def test_a_file_of_carriage_returns_alone_counts_its_quoted_rows_once(tmp_path: Path) -> None:
    """Excel's "CSV (Macintosh)": the import reads each carriage return as a line's end."""
    path = tmp_path / "involvements.csv"
    lines = [INVOLVEMENTS_HEADER, ROW.format(service='"Health\rvisiting"'), ROW.format(service="Education")]
    path.write_bytes(("\r".join(lines) + "\r").encode("utf-8"))
    assert feed_rows([path], FeedKind.INVOLVEMENTS) == 2


def test_rows_each_with_a_stray_quote_around_a_field_over_lines_are_each_one_row(tmp_path: Path) -> None:
    """A feed whose every row has a quote inside an unquoted field (O"Brien), over several blocks,
    with a field over lines among them: each record is one row, as the csv module reads it."""
    path = tmp_path / "involvements.csv"
    stray = ROW.format(service='O"Brien') + "\n"
    many = 3 * BLOCK // len(stray)
    over_lines = ROW.format(service='"Health\n\nvisiting, ""home"""') + "\n"
    path.write_text(INVOLVEMENTS_HEADER + "\n" + stray * many + over_lines + stray * many, encoding="utf-8")
    assert rows_read(path) == 2 * many + 1
    assert feed_rows([path], FeedKind.INVOLVEMENTS) == 2 * many + 1
