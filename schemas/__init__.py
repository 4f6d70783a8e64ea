"""The pydantic event contracts of aiguillage and their topic names, nothing else."""

from schemas._base import Contract, UnsupportedSchemaVersion, UtcDatetime
from schemas.accounts import AccountAction
from schemas.contacts import OutboundContact
from schemas.customers import CustomerRecord
from schemas.dead_letters import DeadLetter
from schemas.dossiers import (
    DossierCommand,
    DossierCommandAdapter,
    DossierEvent,
    DossierEventAdapter,
)
from schemas.intake import (
    AttachmentRef,
    CallDetails,
    IntakeItem,
    LetterDetails,
    PostalAddress,
    SenderHints,
)
from schemas.tasks import Task

__all__ = [
    "AccountAction",
    "AttachmentRef",
    "CallDetails",
    "Contract",
    "CustomerRecord",
    "DeadLetter",
    "DossierCommand",
    "DossierCommandAdapter",
    "DossierEvent",
    "DossierEventAdapter",
    "IntakeItem",
    "LetterDetails",
    "OutboundContact",
    "PostalAddress",
    "SenderHints",
    "Task",
    "UnsupportedSchemaVersion",
    "UtcDatetime",
]
