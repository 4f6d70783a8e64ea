"""The router's application layer: load → decide (domain) → save + outbox, one transaction."""

from __future__ import annotations

import dataclasses
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
from services.router.adapters.batch import RoutingBatch
from services.router.adapters.directory import DirectoryRepository
from services.router.adapters.repository import DossierRepository
from services.router.domain.classification import Classification, classify
from services.router.domain.commands import CommandEffects, DossierState, apply_command
from services.router.domain.dossiers import DossierView, FollowUpPolicy, decide
from services.router.domain.effects import Effects, plan
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
    outcome: str  # opened | attached | cancelled | out_of_perimeter | duplicate
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
        follow_up: FollowUpPolicy | None = None,
    ) -> None:
        self._store = store
        self._rules = rules
        self._relay = relay
        self._clock = clock
        self._retry_max_s = retry_max_s
        self._match_policy = match_policy or MatchPolicy()
        self._follow_up = follow_up or FollowUpPolicy(
            fac_service=rules.dictionary.get("FAC").service, rdr_code=rules.escalation.rdr_code
        )

    async def route(self, items: Sequence[IntakeItem]) -> list[RouteOutcome]:
        """Route a batch of items in one transaction, then publish the outbox.

        Reads are set-wise (processed ids, directory candidates, the customers'
        dossiers), customers are locked in a fixed order, decisions are taken
        in item order against an in-memory view that already holds this
        batch's earlier dossiers, and writes are set-wise.
        """

        async def attempt() -> list[RouteOutcome]:
            async with self._store.transaction() as connection:
                return await self._route_batch(connection, items)

        outcomes = await retry_store(attempt, max_seconds=self._retry_max_s)
        await self._relay.flush()
        return outcomes

    async def _route_batch(
        self, connection: AsyncConnection, items: Sequence[IntakeItem]
    ) -> list[RouteOutcome]:
        repo = DossierRepository(connection, postgres=self._store.is_postgres)
        done = await repo.processed_ids(ITEMS_CONSUMER, [item.item_id for item in items])
        fresh = list({i.item_id: i for i in items if i.item_id not in done}.values())
        if not fresh:
            return [RouteOutcome(item.item_id, "duplicate", None) for item in items]
        now = self._clock()
        candidates = await DirectoryRepository(connection).candidates(i.sender for i in fresh)
        customers = [identify_customer(i.sender, candidates, self._match_policy) for i in fresh]
        keys = {c.key for c, i in zip(customers, fresh, strict=True) if c.key and not i.internal}
        await repo.lock_customers(keys)
        since = min(i.received_at for i in fresh) - self._follow_up.window
        views = {
            k: [self._with_dunning(d) for d in ds]
            for k, ds in (await repo.dossiers_of(keys, since)).items()
        }
        batch = RoutingBatch(ITEMS_CONSUMER, now)
        messages: list[OutboxMessage] = []
        outcomes = {item.item_id: RouteOutcome(item.item_id, "duplicate", None) for item in items}
        for item, customer in zip(fresh, customers, strict=True):
            key = customer.key if not item.internal else None
            classification = self._classify(item)
            decision = decide(
                item, classification, customer, views.get(key or "", []), self._follow_up
            )
            effects = plan(item, classification, customer, decision, now)
            outcome = _outcome_name(effects)
            dossier_id = batch.add(item, key, effects, outcome)
            if key is not None:
                views[key] = [self._with_dunning(v) for v in _after(views.get(key, []), effects)]
            messages += _messages(effects)
            outcomes[item.item_id] = RouteOutcome(
                item.item_id, outcome, dossier_id, effects.reasons
            )
        await repo.save_batch(batch)
        await add_to_outbox(connection, messages, now)
        return [outcomes[item.item_id] for item in items]

    def _classify(self, item: IntakeItem) -> Classification:
        return classify(
            subject=item.subject,
            text=item.text,
            channel=item.channel,
            tsa_box=item.tsa_box,
            rules=self._rules,
        )

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
                    state.dossier_id,
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
                directory = DirectoryRepository(connection)
                if record is not None:
                    return await directory.save(record)
                if key:
                    await directory.forget(key)
                    return "deleted"
                return "ignored"

        return await retry_store(attempt, max_seconds=self._retry_max_s)

    def _blocks_dunning(self, dossier_type: str) -> bool:
        try:
            return self._rules.dictionary.get(dossier_type).blocks_dunning
        except KeyError:
            return False

    def _with_dunning(self, view: DossierView) -> DossierView:
        return dataclasses.replace(view, blocks_dunning=self._blocks_dunning(view.dossier_type))


def _outcome_name(effects: Effects) -> str:
    names = {
        "OpenDossier": "opened",
        "AttachToDossier": "attached",
        "CancelRequest": "cancelled",
        "ReviewPerimeter": "out_of_perimeter",
    }
    return names[type(effects.decision).__name__]


def _after(views: list[DossierView], effects: Effects) -> list[DossierView]:
    """The customer's dossiers once this item's effects are applied (for the rest of the batch)."""
    if effects.opened is not None:
        opened = effects.opened
        new = DossierView(
            opened.dossier_id, opened.dossier_type, "open", opened.customer_ref, opened.service
        )
        return [*views, new]
    if effects.cancelled is not None:
        gone = effects.cancelled.dossier_id
        return [v for v in views if v.dossier_id != gone]
    return views


def _event_message(event: BaseModel) -> OutboxMessage:
    key = getattr(event, "dossier_id", None)
    return OutboxMessage(topic=DOSSIER_EVENTS, key=key, payload=event.model_dump_json())


def _account_message(action: BaseModel) -> OutboxMessage:
    key = getattr(action, "customer_ref", None)
    return OutboxMessage(topic=ACCOUNT_ACTIONS, key=key, payload=action.model_dump_json())


def _messages(effects: Effects) -> list[OutboxMessage]:
    events = (effects.opened, effects.attached, effects.cancelled)
    messages = [_event_message(e) for e in events if e is not None]
    messages += [
        OutboxMessage(
            topic=task_topic(task.service),
            key=task.dossier_id or task.item_id,
            payload=task.model_dump_json(),
        )
        for task in effects.tasks
    ]
    messages += [_account_message(a) for a in effects.account_actions]
    return messages
