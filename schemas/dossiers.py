"""Dossier facts (``dossier.events.v1``) and downstream commands (``dossier.commands.v1``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas._base import Contract, UtcDatetime
from schemas.intake import Channel

__all__ = [
    "AwaitThirdParty",
    "CancelDossier",
    "CloseDossier",
    "ContactAttached",
    "DeadlineBasis",
    "DeadlineSet",
    "DirectDebitSuspended",
    "DossierCancelled",
    "DossierClosed",
    "DossierCommand",
    "DossierCommandAdapter",
    "DossierEvent",
    "DossierEventAdapter",
    "DossierOpened",
    "DossierRequalified",
    "HoldingMailSent",
    "Kind",
    "RecordReply",
    "ReplySent",
    "RequalifyDossier",
    "RequireFieldWork",
    "ResumeFromThirdParty",
    "SlaBreached",
    "ThirdPartyAwaited",
    "ThirdPartyReceived",
    "Urgency",
]

Kind = Literal["demande", "reclamation"]
Urgency = Literal["urgent", "prioritaire", "normale"]
DeadlineBasis = Literal["48h", "5wd", "15wd"]


class _DossierFact(Contract):
    event_id: str = Field(min_length=1, max_length=300, description="deterministic, for dedupe")
    dossier_id: str = Field(min_length=1, max_length=64)
    occurred_at: UtcDatetime


class DossierOpened(_DossierFact):
    """A dossier was opened for a new request (procedure 4.6)."""

    type: Literal["dossier_opened"] = "dossier_opened"
    item_id: str
    channel: Channel
    contact_date: UtcDatetime
    dossier_type: str
    kind: Kind
    urgency: Urgency
    service: str
    needs_field_work: bool = False
    sensitive: tuple[str, ...] = ()
    customer_ref: str | None = None
    identified: bool = True
    identification: str = Field(default="reference", description="how the customer was found")
    sender_is_holder: bool = Field(default=True, description="else an interlocutor (5.1.2)")
    reply_email: str | None = Field(default=None, description="where holding mails go")
    region: str | None = Field(default=None, description="French department code (calendar)")
    linked_dossier_id: str | None = Field(default=None, description="closed dossier (4.9)")
    reasons: tuple[str, ...] = ()


class ContactAttached(_DossierFact):
    """A new contact about an open request was attached to it (multi-contact, 4.8)."""

    type: Literal["contact_attached"] = "contact_attached"
    item_id: str
    channel: Channel
    contact_date: UtcDatetime
    supervisor_signalled: bool = True
    sender_is_holder: bool = True


class DossierRequalified(_DossierFact):
    """The dossier's type, kind, urgency or field-work need changed (5.1.6 NB)."""

    type: Literal["dossier_requalified"] = "dossier_requalified"
    dossier_type: str
    kind: Kind
    urgency: Urgency
    needs_field_work: bool
    reason: str


class DeadlineSet(_DossierFact):
    """A response deadline was set or moved (4.12)."""

    type: Literal["deadline_set"] = "deadline_set"
    deadline_id: str
    basis: DeadlineBasis
    due_at: UtcDatetime
    holding_mail_at: UtcDatetime | None = None


class HoldingMailSent(_DossierFact):
    """A holding mail (or an outbound-call task instead) went out before a deadline (4.12)."""

    type: Literal["holding_mail_sent"] = "holding_mail_sent"
    deadline_id: str
    medium: Literal["email", "outbound_call"]


class SlaBreached(_DossierFact):
    """A deadline passed with no answer sent."""

    type: Literal["sla_breached"] = "sla_breached"
    deadline_id: str
    due_at: UtcDatetime


class ReplySent(_DossierFact):
    """The customer was answered; the running deadline is met (4.11, 4.12)."""

    type: Literal["reply_sent"] = "reply_sent"
    medium: Literal["email", "letter", "phone"]


class ThirdPartyAwaited(_DossierFact):
    """The request waits for a third party's approval: no deadline runs meanwhile (4.12)."""

    type: Literal["third_party_awaited"] = "third_party_awaited"
    third_party: str


class ThirdPartyReceived(_DossierFact):
    """The third party answered: the clock restarts with the time that was left."""

    type: Literal["third_party_received"] = "third_party_received"


class DirectDebitSuspended(_DossierFact):
    """A complaint was not resolved the day it was opened: direct debit suspended (4.13)."""

    type: Literal["direct_debit_suspended"] = "direct_debit_suspended"
    action_id: str


class DossierClosed(_DossierFact):
    """The dossier was closed after its request was handled (4.15)."""

    type: Literal["dossier_closed"] = "dossier_closed"
    reason: str | None = None


class DossierCancelled(_DossierFact):
    """The customer cancelled the request (5.1.7.2 a)."""

    type: Literal["dossier_cancelled"] = "dossier_cancelled"
    reason: str | None = None


DossierEvent = Annotated[
    DossierOpened
    | ContactAttached
    | DossierRequalified
    | DeadlineSet
    | HoldingMailSent
    | SlaBreached
    | ReplySent
    | ThirdPartyAwaited
    | ThirdPartyReceived
    | DirectDebitSuspended
    | DossierClosed
    | DossierCancelled,
    Field(discriminator="type"),
]
DossierEventAdapter: TypeAdapter[DossierEvent] = TypeAdapter(DossierEvent)


class _DossierOrder(Contract):
    command_id: str = Field(min_length=1, max_length=200, description="unique, for dedupe")
    dossier_id: str = Field(min_length=1, max_length=64)
    issued_at: UtcDatetime
    issued_by: str = Field(min_length=1, max_length=100, description="service or agent id")


class CloseDossier(_DossierOrder):
    """Close a handled dossier (4.15)."""

    command: Literal["close"] = "close"
    reason: str | None = None


class CancelDossier(_DossierOrder):
    """Cancel a dossier at the customer's request (5.1.7.2 a)."""

    command: Literal["cancel"] = "cancel"
    reason: str | None = None


class RecordReply(_DossierOrder):
    """Record that the customer was answered (meets the running deadline)."""

    command: Literal["reply_sent"] = "reply_sent"
    medium: Literal["email", "letter", "phone"]


class RequireFieldWork(_DossierOrder):
    """The request needs field work or another service: 15 working days (4.12)."""

    command: Literal["needs_field_work"] = "needs_field_work"


class AwaitThirdParty(_DossierOrder):
    """The request waits for a third party's approval, e.g. a local authority (4.12)."""

    command: Literal["await_third_party"] = "await_third_party"
    third_party: str


class ResumeFromThirdParty(_DossierOrder):
    """The third party answered; the deadline runs again."""

    command: Literal["third_party_received"] = "third_party_received"


class RequalifyDossier(_DossierOrder):
    """Change the dossier's qualification (5.1.6 NB)."""

    command: Literal["requalify"] = "requalify"
    dossier_type: str | None = None
    kind: Kind | None = None
    urgency: Urgency | None = None
    reason: str


DossierCommand = Annotated[
    CloseDossier
    | CancelDossier
    | RecordReply
    | RequireFieldWork
    | AwaitThirdParty
    | ResumeFromThirdParty
    | RequalifyDossier,
    Field(discriminator="command"),
]
DossierCommandAdapter: TypeAdapter[DossierCommand] = TypeAdapter(DossierCommand)
