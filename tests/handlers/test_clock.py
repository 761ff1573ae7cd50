"""Times people read are UK local time with the zone shown: GMT in winter, BST in summer."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.clock import uk_time
from handlers.history import history_line


def test_winter_time_is_gmt_and_summer_time_is_bst() -> None:
    assert uk_time(datetime(2026, 11, 2, 9, 0, tzinfo=UTC)) == "02/11/2026 09:00 GMT"
    assert uk_time(datetime(2026, 7, 1, 9, 0, tzinfo=UTC)) == "01/07/2026 10:00 BST"


def test_the_repeated_autumn_hour_is_told_apart_by_its_zone() -> None:
    """25/10/2026: 01:30 happens twice in London; the zone says which."""
    first = uk_time(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    second = uk_time(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert (first, second) == ("25/10/2026 01:30 BST", "25/10/2026 01:30 GMT")


def test_a_naive_stored_time_is_read_as_utc() -> None:
    assert uk_time(datetime(2026, 7, 1, 23, 30)) == "02/07/2026 00:30 BST"


def test_history_shows_uk_time() -> None:
    at = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert history_line(at, "lookup", "answered", "9434765919").startswith("01/07/2026 10:00 BST · 943 476 5919")
