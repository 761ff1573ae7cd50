# ruff: noqa: RUF001  (letters of other scripts are the point of this file)
"""The one definition of a character that does not show as itself (``store.characters``), which
chat commands, feed fields and a chat account's reported name all use."""

from __future__ import annotations

import pytest

from store.characters import marked, shows_as_itself

HIDDEN = [
    pytest.param("Sam\u202eretraC", "Sam?retraC", id="right-to-left override (RLO)"),
    pytest.param("\u202dSam", "?Sam", id="left-to-right override (LRO)"),
    pytest.param("Sam\u2067x\u2069", "Sam?x?", id="right-to-left isolate and its PDI"),
    pytest.param("Sam\u200fCarter", "Sam?Carter", id="right-to-left mark"),
    pytest.param("\u061cSam", "?Sam", id="Arabic letter mark"),
    pytest.param("999\u200b000", "999?000", id="zero-width space"),
    pytest.param("Sam\u2060Carter", "Sam?Carter", id="word joiner"),
    pytest.param("\ufeffSam", "?Sam", id="byte-order mark"),
    pytest.param("Sam\u00adCarter", "Sam?Carter", id="soft hyphen"),
    pytest.param("Sam\x00", "Sam?", id="NUL"),
    pytest.param("Sam\tCarter\n", "Sam?Carter?", id="tab and line feed"),
    pytest.param("\x1b[2JSam", "?[2JSam", id="ESC"),
    pytest.param("Sam\x7f", "Sam?", id="DEL"),
    pytest.param("Sam\x85\x9bCarter", "Sam??Carter", id="C1 controls (next line, CSI)"),
    pytest.param("Sam\u2028Carter\u2029", "Sam?Carter?", id="line and paragraph separators"),
    pytest.param("Sam\ue000\U000f0000", "Sam??", id="private use"),
    pytest.param("Sam\ud800\udfff", "Sam??", id="lone surrogates"),
    pytest.param("Sam\U000e0041\U000e007f", "Sam??", id="tag characters (ASCII smuggling)"),
    pytest.param("Sam\ufffe\U0010ffff", "Sam??", id="noncharacters"),
    pytest.param("Sam\u0378", "Sam?", id="unassigned"),
    pytest.param("Jo\u200dhn", "Jo?hn", id="joiner between ASCII letters (hides inside a word)"),
    pytest.param("Zoë\u200d", "Zoë?", id="joiner at the end"),
    pytest.param("\u200cمهرناز", "?مهرناز", id="non-joiner at the start"),
    pytest.param("مهر \u200cناز", "مهر ?ناز", id="non-joiner after a space"),
    pytest.param("مهر\u200c\u200c\u200dناز", "مهر???ناز", id="a run of joiners (zero-width code)"),
    pytest.param("12\u200d34", "12?34", id="joiner between digits"),
    pytest.param("\U0001f469\u200d", "\U0001f469?", id="joiner ending an emoji sequence"),
]

SHOWN = [
    pytest.param("Sam Carter", id="ASCII"),
    pytest.param("Zoë Ørsted-Łukasz O’Brien", id="accents and a typographic apostrophe"),
    pytest.param("Мария Иванова", id="Cyrillic"),
    pytest.param("Ἀλέξανδρος", id="Greek"),
    pytest.param("王小明 さくら 김민준", id="Han, kana and Hangul"),
    pytest.param("محمد", id="Arabic"),
    pytest.param("מרים", id="Hebrew"),
    pytest.param("e\u0301 a\u0308 n\u0303", id="combining marks (they show on their letter)"),
    pytest.param("Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", id="stacked combining marks"),
    pytest.param("Sam\u00a0Carter\u3000x\u202fy", id="other spaces"),
    pytest.param("مهر\u200cناز", id="non-joiner in a Persian name"),
    pytest.param("क्\u200dष", id="joiner after a Devanagari virama (half form)"),
    pytest.param("ශ්\u200dර", id="joiner after a Sinhala virama (yansaya)"),
    pytest.param("\U0001f469\u200d\U0001f4bb", id="emoji ZWJ sequence"),
    pytest.param("\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", id="family emoji"),
    pytest.param("\U0001f3f3\ufe0f\u200d\U0001f308", id="emoji with a variation selector before its joiner"),
    pytest.param("\U0001f469\U0001f3fd\u200d\U0001f4bb", id="emoji with a skin tone before its joiner"),
    pytest.param("", id="nothing"),
]


@pytest.mark.parametrize(("text", "as_marked"), HIDDEN)
def test_a_character_that_does_not_show_as_itself_is_found_and_marked(text: str, as_marked: str) -> None:
    """Controls, format characters (bidi, zero-width, tags), separators, private use, surrogates,
    unassigned code points, and a joiner where it joins nothing: each is one ``?`` and nothing else
    of the text changes."""
    assert not shows_as_itself(text)
    assert marked(text) == as_marked


@pytest.mark.parametrize("text", SHOWN)
def test_letters_of_every_script_marks_spaces_and_joiners_that_join_show_as_themselves(text: str) -> None:
    """Accents, other scripts, combining marks and other spaces are what they look like; a joiner
    between the letters of a script that needs it, or inside an emoji sequence, shows by its join."""
    assert shows_as_itself(text)
    assert marked(text) == text
