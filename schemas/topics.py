"""Every Kafka topic the pipeline uses, versioned, in one place."""

from __future__ import annotations

import re

__all__ = [
    "ACCOUNT_ACTIONS",
    "ALL_TOPICS",
    "CUSTOMERS_DIRECTORY",
    "DEAD_LETTERS",
    "DOSSIER_COMMANDS",
    "DOSSIER_EVENTS",
    "INTAKE_ITEMS",
    "OUTBOUND_CONTACTS",
    "SERVICE_QUEUES",
    "TELEPHONY_RAW",
    "task_topic",
]

INTAKE_ITEMS = "intake.items.v1"
DOSSIER_EVENTS = "dossier.events.v1"
DOSSIER_COMMANDS = "dossier.commands.v1"
ACCOUNT_ACTIONS = "account.actions.v1"
OUTBOUND_CONTACTS = "contacts.outbound.v1"
DEAD_LETTERS = "intake.dlq.v1"
TELEPHONY_RAW = "telephony.raw.v1"
CUSTOMERS_DIRECTORY = "customers.directory.v1"

SERVICE_QUEUES: tuple[str, ...] = (
    "customer_service",  # Relation Client Multicanale (TDD), default owner
    "billing",  # Gestion et Vie des Contrats: facturation, encaissement, recouvrement
    "field_ops",  # Opérations: interventions terrain, comptage
    "sensitive_mail",  # équipe courriers sensibles (5.1.4, 5.1.1.1)
    "escalations",  # équipe RDR, réclamations en dernier recours (4.9)
    "supervisor",  # superviseur TDD: multi-contacts (4.8), SLA breaches
    "perimeter_review",  # hors périmètre (5.1.2): counted and reviewed, not recorded
    "identification",  # unidentified senders waiting for manual identification
)

_SERVICE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


def task_topic(service: str) -> str:
    """Return the task topic of a service queue, ``tasks.<service>.v1``."""
    if not _SERVICE.match(service):
        raise ValueError(f"invalid service queue name {service!r}")
    return f"tasks.{service}.v1"


ALL_TOPICS: tuple[str, ...] = (
    INTAKE_ITEMS,
    DOSSIER_EVENTS,
    DOSSIER_COMMANDS,
    ACCOUNT_ACTIONS,
    OUTBOUND_CONTACTS,
    DEAD_LETTERS,
    TELEPHONY_RAW,
    CUSTOMERS_DIRECTORY,
    *(task_topic(service) for service in SERVICE_QUEUES),
)
