"""People: practitioners, their chat identities and credentials, registrations, access requests and
grants, Teams conversations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.tables.base import Base, BigId, Personal, UtcDateTime, holds


class Practitioner(Base):
    __tablename__ = "practitioners"
    __table_args__ = holds(Personal.PERSON, imported=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200))
    local_authority: Mapped[str] = mapped_column(String(64), ForeignKey("local_authorities.name"), index=True)
    phone: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    roles: Mapped[str] = mapped_column(String(64))  # ';'-separated: practitioner, duty_manager, admin
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | inactive
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChatIdentity(Base):
    """A platform identity linked to a practitioner (at most one per platform per practitioner)."""

    __tablename__ = "chat_identities"
    __table_args__ = (UniqueConstraint("practitioner_id", "platform"), holds(Personal.PERSON))
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    practitioner_id: Mapped[str] = mapped_column(String(64), ForeignKey("practitioners.id", ondelete="CASCADE"))
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The last good step-up code typed in this account (``handlers.stepup.flow.is_fresh``).
    stepped_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class RegistrationRequest(Base):
    """A chat identity asking to be linked to a practitioner of the register."""

    __tablename__ = "registration_requests"
    __table_args__ = (
        Index("ix_registration_requests_identity", "platform", "tenant", "user_id", "state"),
        Index("ix_registration_requests_state_created_at", "state", "created_at"),  # the expiry job
        holds(Personal.PERSON),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    practitioner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(128))
    local_authority: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # pending | approved | denied | expired
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))


class AccessRequest(Base):
    """A practitioner asking to see a shielded child's signposts. The purpose is sealed."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ix_access_requests_la_state", "local_authority", "state"),
        Index("ix_access_requests_state_escalate_at", "state", "escalate_at"),
        Index("ix_access_requests_state_expires_at", "state", "expires_at"),
        Index("ix_access_requests_state_created_at", "state", "created_at"),  # opened by a clock ahead (store.skew)
        Index("ix_access_requests_requester_child", "requester_id", "child_ref"),
        holds(Personal.CHILD, child_column="child_ref"),  # who asked about which child, and why
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    requester_id: Mapped[str] = mapped_column(String(64), ForeignKey("practitioners.id", ondelete="CASCADE"))
    child_ref: Mapped[int] = mapped_column(BigInteger, ForeignKey("children.ref", ondelete="CASCADE"))
    local_authority: Mapped[str] = mapped_column(String(64))  # the child's: who may decide
    reason: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed like audit terms
    reason_key: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # pending | approved | denied | expired
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # undecided until then
    escalation_level: Mapped[int] = mapped_column(Integer)
    escalate_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    # The requester found the record by name and date of birth and was never shown its reference:
    # what they are told names the record without it (handlers/access/found.py).
    ref_withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AccessGrant(Base):
    """Permission for one practitioner to see one shielded child's signposts until ``expires_at``."""

    __tablename__ = "access_grants"
    __table_args__ = (
        Index("ix_access_grants_holder", "practitioner_id", "child_ref"),
        Index("ix_access_grants_state_expires_at", "state", "expires_at"),
        Index("ix_access_grants_state_granted_at", "state", "granted_at"),  # granted by a clock ahead (store.skew)
        holds(Personal.CHILD, child_column="child_ref"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("access_requests.id", ondelete="CASCADE"), unique=True
    )
    practitioner_id: Mapped[str] = mapped_column(String(64), ForeignKey("practitioners.id", ondelete="CASCADE"))
    child_ref: Mapped[int] = mapped_column(BigInteger, ForeignKey("children.ref", ondelete="CASCADE"))
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16))  # active | expired
    ref_withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # its request's


class TotpCredential(Base):
    """One authenticator per practitioner. ``seed`` is sealed; the other columns are policy state."""

    __tablename__ = "totp_credentials"
    __table_args__ = holds(Personal.PERSON, wrapped_key=("kek_id", "seed"))
    practitioner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("practitioners.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))  # pending | active | disabled
    kek_id: Mapped[str] = mapped_column(String(16))
    seed: Mapped[bytes] = mapped_column(LargeBinary)
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)  # last accepted RFC 6238 time step
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive wrong codes
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last good code typed at the console (one typed in a chat account is that account's:
    # ``ChatIdentity.stepped_up_at``).
    stepped_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EnrolmentToken(Base):
    """A one-time enrolment link, by the SHA-256 of its token (the token itself is never stored)."""

    __tablename__ = "enrolment_tokens"
    __table_args__ = holds(Personal.PERSON)
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    practitioner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


CHALLENGE_ID_LENGTH = 64
PARKED_KEY_LENGTH = 128


class ParkedCommand(Base):
    """A command waiting for a step-up code (or, with no spec, an enrolment waiting to be confirmed)."""

    __tablename__ = "parked_commands"
    __table_args__ = holds(Personal.PERSON, wrapped_key=("kek_id", "text"))  # sealed text may name a child
    challenge_id: Mapped[str] = mapped_column(String(CHALLENGE_ID_LENGTH), primary_key=True)
    practitioner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(128))
    spec_name: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(PARKED_KEY_LENGTH))  # a click's id, so it acts once
    kek_id: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class TeamsConversation(Base):
    """One person's personal (1:1) Teams conversation with the bot."""

    __tablename__ = "teams_conversations"
    __table_args__ = holds(Personal.PERSON)  # tenant, AAD object id, conversation ids
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # AAD object id
    reference: Mapped[str] = mapped_column(Text)  # JSON conversation reference, ids only
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RelayMessage(Base):
    """A message relayed blind about a shielded child (issue 18): sender, who it went to, and the
    text and any reply sealed under the child's data key, so both die with the child."""

    __tablename__ = "relay_messages"
    __table_args__ = (
        Index("ix_relay_messages_sender_child", "sender_id", "child_ref", "created_at"),
        Index("ix_relay_messages_la_created_at", "local_authority", "created_at"),
        # ``relays``: a child's relays, for the children an authority has now (store/people/relay.py, ``traffic``).
        Index("ix_relay_messages_child_created_at", "child_ref", "created_at"),
        holds(Personal.CHILD, child_column="child_ref"),  # who wrote to whom about which child
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    child_ref: Mapped[int] = mapped_column(BigInteger, ForeignKey("children.ref", ondelete="CASCADE"))
    local_authority: Mapped[str] = mapped_column(String(64))  # the child's, when sent or handed on
    sender_id: Mapped[str] = mapped_column(String(64), ForeignKey("practitioners.id", ondelete="CASCADE"))
    recipients: Mapped[str] = mapped_column(Text)  # ';'-separated practitioner ids
    recipient_role: Mapped[str] = mapped_column(String(16))  # lead | duty_manager | admin | none
    text: Mapped[bytes] = mapped_column(LargeBinary)  # sealed under the child's data key
    reply: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed likewise
    replied_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The sender found the record by name and date of birth: what they are told names it without its reference.
    ref_withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
