"""sla_watch's tables in the dossier store (migration ``sla_0001``).

``sla_dossiers`` holds each dossier's events (the deadline state is their fold)
and a summary of the fold: status, current deadline, planned holding mail, and
``next_check_at``, the due-time index the scheduler claims rows from.

``sla_actions`` is the ledger of what sla_watch did, one row per action id
(holding mail, breach, direct-debit suspension): its primary key is what makes
each action happen once. Holding mails by e-mail go through it as a queue:
``pending`` → ``sending`` (claimed, committed before the SMTP dialogue, with a
real-time lease in ``available_at``) → ``sent``.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.common.store.tables import UtcTimestamp, metadata

__all__ = ["sla_actions", "sla_dossiers"]

sla_dossiers = sa.Table(
    "sla_dossiers",
    metadata,
    sa.Column("dossier_id", sa.String(64), primary_key=True),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("deadline_id", sa.String(100), nullable=True),
    sa.Column("due_at", UtcTimestamp, nullable=True),
    sa.Column("holding_mail_at", UtcTimestamp, nullable=True),
    sa.Column("next_check_at", UtcTimestamp, nullable=True),
    sa.Column("parked_reason", sa.String(200), nullable=True),
    sa.Column("updated_at", UtcTimestamp, nullable=False),
    sa.Index(
        "ix_sla_dossiers_next_check_at",
        "next_check_at",
        sqlite_where=sa.text("next_check_at IS NOT NULL"),
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    ),
)

sla_actions = sa.Table(
    "sla_actions",
    metadata,
    sa.Column("action_id", sa.String(300), primary_key=True),
    sa.Column("dossier_id", sa.String(64), nullable=False),
    sa.Column("deadline_id", sa.String(100), nullable=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("medium", sa.String(20), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("message_id", sa.String(200), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("uncertain", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claim_token", sa.String(64), nullable=True),
    sa.Column("available_at", UtcTimestamp, nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Column("created_at", UtcTimestamp, nullable=False),
    sa.Column("done_at", UtcTimestamp, nullable=True),
    sa.Index("ix_sla_actions_dossier_id", "dossier_id"),
    sa.Index(
        "ix_sla_actions_queue",
        "available_at",
        sqlite_where=sa.text("status IN ('pending', 'sending')"),
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    ),
)
