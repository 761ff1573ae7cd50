"""Telling a practitioner through every contact on record: each linked chat account and the secure email.

A change to who can act as a practitioner must be seen by them even when one of their chat accounts
is in someone else's hands (the account that asked for it may be the taken one): a chat account
linked to their id (handlers/access/registration.py) and their authenticator reset
(handlers/stepup/reset.py). Such a notice is one every linked chat account must see
(``EVERY_ACCOUNT``: the outbox, bot/notify.py, counts it delivered only once each has it), and the
same words go to their recorded secure email (a notice of kind ``email`` for the operator's mailer).
"""

from __future__ import annotations

from handlers.vocabulary import Notice, ThenEnrol
from store.delivery.notices import EMAIL_KIND

LINKED = "registration_approved"  # a chat account was linked to their practitioner id
RESET = "stepup_reset"  # their authenticator was reset
EVERY_ACCOUNT = frozenset({LINKED, RESET})


def every_contact(
    practitioner_id: str, kind: str, said: str | ThenEnrol, dedupe_key: str | None = None
) -> list[Notice]:
    """The notices that tell ``practitioner_id`` what is ``said`` on every linked chat account and at
    their recorded secure email (a ``dedupe_key`` keys both, the e-mail's with ``:email`` after it)."""
    if kind not in EVERY_ACCOUNT:
        raise ValueError(f"{kind} is not a notice every account must see")
    email_key = None if dedupe_key is None else f"{dedupe_key}:email"
    text, then_enrol = (said.text, said) if isinstance(said, ThenEnrol) else (said, None)
    return [
        Notice(practitioner_id, kind, text, dedupe_key=dedupe_key, then_enrol=then_enrol),
        Notice(practitioner_id, EMAIL_KIND, text, dedupe_key=email_key, then_enrol=then_enrol),
    ]
