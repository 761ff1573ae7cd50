"""What a duty manager and a requester see around a decision fits what is decided (review, LOW).

A registration's Approve confirmation and its Deny reason box speak of a registration, not of a
child's signposts; an access request's keep their wording. The Request access box takes as long a
purpose as the typed ``request`` command does (``screening.MAX_TEXT``, README: 1,000 characters).
"""

from __future__ import annotations

import pytest

from bot.slack import render
from handlers.access import screening
from handlers.access.notices import decision_buttons
from handlers.search import request_access_button

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


def confirm_texts(request_id: str) -> tuple[str, str, str, str]:
    approve, deny = render.action_blocks(decision_buttons(request_id))[0]["elements"]
    return (
        approve["confirm"]["title"]["text"],
        approve["confirm"]["text"]["text"],
        deny["confirm"]["title"]["text"],
        deny["confirm"]["text"]["text"],
    )


def test_a_registration_s_approve_confirmation_speaks_of_the_registration_not_a_child() -> None:
    approve_title, approve_text, deny_title, deny_text = confirm_texts("R4")
    assert approve_title == "Approve this registration?"
    assert "child" not in approve_text and "signposts" not in approve_text
    assert "chat account" in approve_text and "recorded under your name" in approve_text
    assert deny_title == "Deny this registration?" and "child" not in deny_text


def test_an_access_request_s_confirmation_keeps_the_child_s_signposts() -> None:
    approve_title, approve_text, deny_title, _ = confirm_texts("12")
    assert approve_title == "Approve this request?" and deny_title == "Deny this request?"
    assert approve_text.startswith("The requester will see this child's signposts")


def test_a_registration_s_deny_reason_box_fits_a_registration() -> None:
    _, deny = decision_buttons("R4")
    assert deny.input is not None
    assert "child" not in deny.input.label and "registration" in deny.input.label
    _, deny_access = decision_buttons("12")
    assert deny_access.input is not None and "no child details" in deny_access.input.label


def test_the_request_access_box_takes_the_typed_request_s_limit() -> None:
    button = request_access_button(9990000050)
    assert button.input is not None and button.input.max_length == screening.MAX_TEXT == 1000
    value = render.decode_button(render.encode_button(button))
    [block] = render.input_modal(value, '{"c":"request 999 000 0050"}')["blocks"]
    assert block["element"]["max_length"] == 1000
