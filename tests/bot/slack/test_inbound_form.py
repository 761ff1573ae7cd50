"""bot.slack.inbound reads a signed form: who sent it is known only when no field naming them came
twice, whether or not another field held an escape that is not UTF-8 (that form was read naming
the last of two user ids, where the same form without the bad byte named nobody)."""

from __future__ import annotations

import pytest

from bot.slack import inbound

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

FORMS = {
    "repeated user": ("command=%2Fsignpost&team_id=T1&user_id=U1&user_id=U2&text=hi", "repeated_form_field"),
    "repeated user, bad text": ("command=%2Fsignpost&team_id=T1&user_id=U1&user_id=U2&text=%FF", "bad_form"),
    "repeated team, bad key": ("command=%2Fsignpost&team_id=T1&team_id=T2&user_id=U1&te%FFxt=hi", "bad_form"),
}


@pytest.mark.parametrize(("form", "reason"), FORMS.values(), ids=FORMS.keys())
def test_a_form_naming_its_sender_twice_names_nobody_even_with_a_field_that_does_not_read(
    form: str, reason: str
) -> None:
    """Refused, as a slash command, with no payload to audit it under either sender."""
    with pytest.raises(inbound.Refused) as refused:
        inbound.parse(form.encode(), inbound.FORM)
    assert (refused.value.args, refused.value.payload, refused.value.slash_command) == ((reason,), None, True)


def test_a_form_with_a_field_that_does_not_read_still_names_its_one_sender() -> None:
    """The readable fields of a form whose text did not read name its one sender (audited kindly)."""
    with pytest.raises(inbound.Refused) as refused:
        inbound.parse(b"command=%2Fsignpost&team_id=T1&user_id=U1&text=%FF", inbound.FORM)
    assert refused.value.payload == {"command": "/signpost", "team_id": "T1", "user_id": "U1"}
