"""The router's application layer: load → decide (domain) → save + outbox, one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import CustomerRecord, IntakeItem
from schemas.dossiers import DossierCommand
from schemas.topics import ACCOUNT_ACTIONS, DOSSIER_EVENTS, task_topic
from services.common.outbox import OutboxMessage, OutboxRelay, add_to_outbox
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.router.adapters.repository import DossierRepository
from services.router.domain.classification import classify
from services.router.domain.commands import CommandEffects, DossierState, apply_command
from services.router.domain.dossiers import (
    AttachToDossier,
    Effects,
    OpenDossier,
    decide,
    plan,
)
from services.router.domain.identification import MatchPolicy, identify_customer
from services.router.domain.rules import RuleSet
from services.router.errors import UnknownDossier

__all__ = ["COMMANDS_CONSUMER", "ITEMS_CONSUMER", "RouteOutcome", "RouterService"]

ITEMS_CONSUMER = "router.items"
COMMANDS_CONSUMER = "router.commands"
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    """What happened to one item, for logs and metrics."""

    item_id: str
    outcome: str  # opened | attached | out_of_perimeter | duplicate
    dossier_id: str | None
    reasons: tuple[str, ...] = ()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RouterService:
    """Routes intake items and applies dossier commands, idempotently."""

    def __init__(
        self,
        store: Store,
        rules: RuleSet,
        relay: OutboxRelay,
        *,
        clock: Clock = _utcnow,
        retry_max_s: float = 30.0,
        match_policy: MatchPolicy | None = None,
    ) -> None:
        self._store = store
        self._rules = rules
        self._relay = relay
        self._clock = clock
        self._retry_max_s = retry_max_s
        self._match_policy = match_policy or MatchPolicy()

    async def route(self, items: Sequence[IntakeItem]) -> list[RouteOutcome]:
        """Route a batch of items in one transaction, then publish the outbox."""

        async def attempt() -> list[RouteOutcome]:
            async with self._store.transaction() as connection:
                repo = DossierRepository(connection, postgres=self._store.is_postgres)
                return [await self._route_one(connection, repo, item) for item in items]

        outcomes = await retry_store(attempt, max_seconds=self._retry_max_s)
        await self._relay.flush()
        return outcomes

    async def _route_one(
        self, connection: AsyncConnection, repo: DossierRepository, item: IntakeItem
    ) -> RouteOutcome:
        if await repo.is_processed(ITEMS_CONSUMER, item.item_id):
            return RouteOutcome(item.item_id, "duplicate", None)
        now = self._clock()
        classification = classify(
            subject=item.subject,
            text=item.text,
            channel=item.channel,
            tsa_box=item.tsa_box,
            rules=self._rules,
        )
        candidates = await repo.directory_candidates(item.sender)
        customer = identify_customer(item.sender, candidates, self._match_policy)
        dossiers = []
        if customer.key is not None and not item.internal:
            await repo.lock_customer(customer.key)
            dossiers = await repo.customer_dossiers(customer.key)
        effects = plan(
            item, classification, customer, decide(item, classification, customer, dossiers), now
        )
        dossier_id = await self._save(repo, item, customer.key, effects, now)
        await add_to_outbox(connection, _messages(effects), now)
        outcome = _outcome_name(effects)
        await repo.mark_processed(ITEMS_CONSUMER, item.item_id, outcome, dossier_id, now)
        return RouteOutcome(item.item_id, outcome, dossier_id, effects.reasons)

    async def _save(
        self,
        repo: DossierRepository,
        item: IntakeItem,
        customer_key: str | None,
        effects: Effects,
        now: dt.datetime,
    ) -> str | None:
        decision = effects.decision
        if isinstance(decision, AttachToDossier):
            role = "multi_contact"
        elif isinstance(decision, OpenDossier) and effects.opened is not None:
            opened = effects.opened
            role = "initial"
            await repo.insert_dossier(
                {
                    "dossier_id": opened.dossier_id,
                    "customer_key": None if item.internal else customer_key,
                    "customer_ref": opened.customer_ref,
                    "dossier_type": opened.dossier_type,
                    "kind": opened.kind,
                    "urgency": opened.urgency,
                    "service": opened.service,
                    "channel": opened.channel,
                    "sensitive": ",".join(opened.sensitive),
                    "needs_field_work": opened.needs_field_work,
                    "identified": opened.identified,
                    "identification": opened.identification,
                    "status": "open",
                    "item_id": item.item_id,
                    "contact_date": item.received_at,
                    "opened_at": now,
                }
            )
        else:
            return None
        await repo.add_contact(
            item_id=item.item_id,
            dossier_id=decision.dossier_id,
            channel=item.channel,
            role=role,
            contact_date=item.received_at,
            now=now,
            sender_is_holder=effects.attached.sender_is_holder
            if effects.attached
            else effects.opened.sender_is_holder
            if effects.opened
            else True,
        )
        return decision.dossier_id

    async def apply(self, command: DossierCommand) -> CommandEffects:
        """Apply one downstream command to its dossier, once (by command id)."""

        async def attempt() -> CommandEffects:
            async with self._store.transaction() as connection:
                repo = DossierRepository(connection, postgres=self._store.is_postgres)
                if await repo.is_processed(COMMANDS_CONSUMER, command.command_id):
                    return CommandEffects(outcome="duplicate")
                row = await repo.get(command.dossier_id)
                if row is None:
                    raise UnknownDossier(command.dossier_id)
                now = self._clock()
                state = DossierState(
                    dossier_id=command.dossier_id,
                    status=str(row.status),
                    dossier_type=str(row.dossier_type),
                    kind=row.kind,
                    urgency=row.urgency,
                    needs_field_work=bool(row.needs_field_work),
                    customer_ref=row.customer_ref,
                    blocks_dunning=self._blocks_dunning(str(row.dossier_type)),
                )
                effects = apply_command(state, command, now)
                if effects.updates:
                    await repo.update_dossier(command.dossier_id, effects.updates)
                messages = [_event_message(e) for e in effects.events]
                messages += [_account_message(a) for a in effects.account_actions]
                await add_to_outbox(connection, messages, now)
                await repo.mark_processed(
                    COMMANDS_CONSUMER,
                    command.command_id,
                    effects.outcome[:40],
                    command.dossier_id,
                    now,
                )
                return effects

        effects = await retry_store(attempt, max_seconds=self._retry_max_s)
        await self._relay.flush()
        return effects

    async def update_directory(self, record: CustomerRecord | None, key: str | None) -> str:
        """Apply a directory change: a record, or a null tombstone for ``key``."""

        async def attempt() -> str:
            async with self._store.transaction() as connection:
                repo = DossierRepository(connection, postgres=self._store.is_postgres)
                if record is not None:
                    return await repo.save_customer(record)
                if key:
                    await repo.forget_customer(key)
                    return "deleted"
                return "ignored"

        return await retry_store(attempt, max_seconds=self._retry_max_s)

    def _blocks_dunning(self, dossier_type: str) -> bool:
        try:
            return self._rules.dictionary.get(dossier_type).blocks_dunning
        except KeyError:
            return False


def _outcome_name(effects: Effects) -> str:
    if isinstance(effects.decision, OpenDossier):
        return "opened"
    if isinstance(effects.decision, AttachToDossier):
        return "attached"
    return "out_of_perimeter"


def _json(model: BaseModel) -> str:
    return model.model_dump_json()


def _event_message(event: BaseModel) -> OutboxMessage:
    return OutboxMessage(
        topic=DOSSIER_EVENTS, key=getattr(event, "dossier_id", None), payload=_json(event)
    )


def _account_message(action: BaseModel) -> OutboxMessage:
    return OutboxMessage(
        topic=ACCOUNT_ACTIONS, key=getattr(action, "customer_ref", None), payload=_json(action)
    )


def _messages(effects: Effects) -> list[OutboxMessage]:
    messages = [_event_message(e) for e in (effects.opened, effects.attached) if e is not None]
    messages += [
        OutboxMessage(
            topic=task_topic(task.service),
            key=task.dossier_id or task.item_id,
            payload=_json(task),
        )
        for task in effects.tasks
    ]
    messages += [_account_message(a) for a in effects.account_actions]
    return messages
