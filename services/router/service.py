"""The router's application layer: load → decide (domain) → save + outbox, one transaction."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import CustomerRecord, IntakeItem, Task
from schemas.dossiers import DossierCommand
from schemas.topics import ACCOUNT_ACTIONS, DOSSIER_EVENTS, task_topic
from services.common.logging import get_logger
from services.common.outbox import OutboxMessage, OutboxRelay, add_to_outbox, publish_pending
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.router.adapters.batch import RoutingBatch
from services.router.adapters.directory import DirectoryRepository
from services.router.adapters.repository import DossierRepository
from services.router.classifier import Classifier, ThreadClassifier
from services.router.domain.classification import Classification
from services.router.domain.commands import (
    CommandEffects,
    CommandPolicy,
    DossierState,
    apply_command,
)
from services.router.domain.dossiers import DossierView, FollowUpPolicy, decide
from services.router.domain.effects import Effects, plan
from services.router.domain.identification import CandidateIndex, MatchPolicy
from services.router.domain.rules import RuleSet
from services.router.errors import RequalifyConflict, UnknownDossier

__all__ = ["COMMANDS_CONSUMER", "ITEMS_CONSUMER", "RouteOutcome", "RouterService"]

log = get_logger(__name__)

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
        classifier: Classifier | None = None,
    ) -> None:
        self._store = store
        self._classifier = classifier or ThreadClassifier(rules)
        self._relay = relay
        self._clock = clock
        self._retry_max_s = retry_max_s
        self._match_policy = match_policy or MatchPolicy()
        self._follow_up = follow_up or FollowUpPolicy.of(rules)
        self._dunning_types = frozenset(t.code for t in rules.dictionary.types if t.blocks_dunning)
        self._command_policy = CommandPolicy(
            dunning_types=self._dunning_types,
            owners={t.code: t.service for t in rules.dictionary.types},
        )
        self._publishing: asyncio.Task[None] | None = None
        self._unpublished: list[int] = []

    async def route(self, items: Sequence[IntakeItem]) -> list[RouteOutcome]:
        """Route a batch of items in one transaction, then publish the outbox in the background.

        Reads are set-wise (processed ids, directory candidates, the customers'
        dossiers), customers are locked in a fixed order, decisions are taken
        in item order against an in-memory view that already holds this
        batch's earlier dossiers, and writes are set-wise. Once the transaction
        is committed the batch's effects and messages are durable, so the next
        batch is routed while this one's messages are published (see
        :meth:`publish_soon`).
        """

        unique = list({item.item_id: item for item in items}.values())
        # Qualification is pure and needs no store: a worker (thread or process) does it
        # while the store answers the batch's reads (and only once, whatever the retries).
        classifying = asyncio.ensure_future(self._classifier.classify_all(unique))

        async def attempt() -> tuple[list[RouteOutcome], list[int]]:
            async with self._store.transaction() as connection:
                return await self._route_batch(connection, items, unique, classifying)

        try:
            outcomes, written = await retry_store(attempt, max_seconds=self._retry_max_s)
        finally:
            _settle(classifying)
        self.publish_soon(written)
        return outcomes

    def publish_soon(self, ids: Sequence[int]) -> None:
        """Publish these committed outbox rows in a background task (at most one runs).

        The rows were committed with the effects (nothing is lost if
        publication fails or the process stops: the relay's periodic sweep, or
        the next start, publishes them); publishing while the next batch is
        routed keeps the consumer busy instead of waiting for Kafka acks. Rows
        committed while a publication runs are published by the same task next.
        """
        self._unpublished += ids
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.create_task(self._publish())
            self._publishing.add_done_callback(_report_failure)

    async def _publish(self) -> None:
        while self._unpublished:
            ids, self._unpublished = self._unpublished, []
            if not await self._relay.publish_committed(ids):
                # these rows and those queued behind them stay in the outbox: the
                # relay's periodic sweep retries them (no retry loop on a lost broker here)
                self._unpublished.clear()
                return

    async def drain(self) -> None:
        """Before the broker stops: wait for the background publication, then sweep once more
        (bounded), so that rows a failed publication left go out now, not at the next start."""
        while self._publishing is not None and not self._publishing.done():
            await asyncio.wait({self._publishing})  # its outcome is read by stop_publishing
        await publish_pending(self._relay)

    async def stop_publishing(self) -> None:
        """Cancel a background publication still running (the broker has stopped).

        Its rows stay in the outbox; any router's relay publishes them later.
        """
        if self._publishing is not None:
            self._publishing.cancel()
            await asyncio.gather(self._publishing, return_exceptions=True)
            self._publishing = None

    async def _route_batch(
        self,
        connection: AsyncConnection,
        items: Sequence[IntakeItem],
        unique: Sequence[IntakeItem],
        classifying: asyncio.Future[dict[str, Classification]],
    ) -> tuple[list[RouteOutcome], list[int]]:
        repo = DossierRepository(connection, postgres=self._store.is_postgres)
        done = await repo.processed_ids(ITEMS_CONSUMER, [item.item_id for item in items])
        fresh = [item for item in unique if item.item_id not in done]
        if not fresh:
            return [RouteOutcome(item.item_id, "duplicate", None) for item in items], []
        now = self._clock()
        directory = CandidateIndex(
            await DirectoryRepository(connection).candidates(i.sender for i in fresh)
        )
        customers = [directory.identify(i.sender, self._match_policy) for i in fresh]
        keys = {c.key for c, i in zip(customers, fresh, strict=True) if c.key and not i.internal}
        await repo.lock_customers(keys)
        since = min(i.received_at for i in fresh) - self._follow_up.window
        views = {
            k: [self._with_dunning(d) for d in ds]
            for k, ds in (await repo.dossiers_of(keys, since)).items()
        }
        classifications = await asyncio.shield(classifying)
        batch = RoutingBatch(ITEMS_CONSUMER, now)
        messages: list[OutboxMessage] = []
        outcomes = {item.item_id: RouteOutcome(item.item_id, "duplicate", None) for item in items}
        for item, customer in zip(fresh, customers, strict=True):
            key = customer.key if not item.internal else None
            classification = classifications[item.item_id]
            decision = decide(
                item, classification, customer, views.get(key or "", []), self._follow_up
            )
            effects = plan(item, classification, customer, decision, now)
            outcome = _outcome_name(effects)
            dossier_id = batch.add(item, key, effects, outcome)
            if key is not None:
                views[key] = self._after(views.get(key, []), effects)
            messages += _messages(effects)
            outcomes[item.item_id] = RouteOutcome(
                item.item_id, outcome, dossier_id, effects.reasons
            )
        await repo.save_batch(batch)
        written = await add_to_outbox(connection, messages, now)
        return [outcomes[item.item_id] for item in items], written

    async def apply(self, command: DossierCommand) -> CommandEffects:
        """Apply one downstream command to its dossier, once (by command id)."""

        async def attempt() -> tuple[CommandEffects, list[int]]:
            async with self._store.transaction() as connection:
                repo = DossierRepository(connection, postgres=self._store.is_postgres)
                if await repo.is_processed(COMMANDS_CONSUMER, command.command_id):
                    return CommandEffects(outcome="duplicate"), []
                row = await repo.get(command.dossier_id, lock_customer=True)
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
                    service=str(row.service),
                    sensitive=bool(row.sensitive),
                )
                effects = apply_command(state, command, now, self._command_policy)
                new_type = effects.updates.get("dossier_type", state.dossier_type)
                if new_type != state.dossier_type and row.customer_key is not None:
                    other = await repo.open_dossier_of(str(row.customer_key), str(new_type))
                    if other is not None:
                        raise RequalifyConflict(state.dossier_id, str(new_type), other)
                if effects.updates:
                    await repo.update_dossier(command.dossier_id, effects.updates)
                messages = [_event_message(e) for e in effects.events]
                messages += [_account_message(a) for a in effects.account_actions]
                messages += [_task_message(t) for t in effects.tasks]
                written = await add_to_outbox(connection, messages, now)
                await repo.mark_processed(
                    COMMANDS_CONSUMER,
                    command.command_id,
                    effects.outcome[:40],
                    state.dossier_id,
                    now,
                )
                return effects, written

        effects, written = await retry_store(attempt, max_seconds=self._retry_max_s)
        await self._relay.publish_committed(written)  # committed: no redelivery on failure
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
        return dossier_type in self._dunning_types  # an unknown type blocks nothing

    def _with_dunning(self, view: DossierView) -> DossierView:
        blocks = self._blocks_dunning(view.dossier_type)
        if view.blocks_dunning == blocks:
            return view
        return dataclasses.replace(view, blocks_dunning=blocks)

    def _after(self, views: list[DossierView], effects: Effects) -> list[DossierView]:
        """The customer's dossiers once this item's effects apply (for the rest of the batch)."""
        if effects.opened is not None:
            opened = effects.opened
            new = DossierView(
                opened.dossier_id,
                opened.dossier_type,
                "open",
                opened.customer_ref,
                opened.service,
                blocks_dunning=self._blocks_dunning(opened.dossier_type),
            )
            return [*views, new]
        if effects.cancelled is not None:
            gone = effects.cancelled.dossier_id
            return [v for v in views if v.dossier_id != gone]
        return views


def _settle(future: asyncio.Future[dict[str, Classification]]) -> None:
    """Leave no qualification running unobserved once the batch is done or has failed."""
    if not future.done():
        future.cancel()  # the worker thread finishes on its own; its result is dropped
    elif not future.cancelled():
        future.exception()  # marks a failure as seen (the batch already failed with it)


def _report_failure(task: asyncio.Task[None]) -> None:
    """Log a background publication that failed unexpectedly (its rows stay in the outbox)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        # outages are handled inside the task: this is a bug (the sweep republishes the rows)
        log.error("outbox.publish_crashed", error=type(error).__name__, exc_info=error)


def _outcome_name(effects: Effects) -> str:
    names = {
        "OpenDossier": "opened",
        "AttachToDossier": "attached",
        "CancelRequest": "cancelled",
        "ReviewPerimeter": "out_of_perimeter",
    }
    return names[type(effects.decision).__name__]


def _event_message(event: BaseModel) -> OutboxMessage:
    key = getattr(event, "dossier_id", None)
    return OutboxMessage(topic=DOSSIER_EVENTS, key=key, payload=event.model_dump_json())


def _account_message(action: BaseModel) -> OutboxMessage:
    key = getattr(action, "customer_ref", None)
    return OutboxMessage(topic=ACCOUNT_ACTIONS, key=key, payload=action.model_dump_json())


def _task_message(task: Task) -> OutboxMessage:
    return OutboxMessage(
        topic=task_topic(task.service),
        key=task.dossier_id or task.item_id,
        payload=task.model_dump_json(),
    )


def _messages(effects: Effects) -> list[OutboxMessage]:
    events = (effects.opened, effects.attached, effects.cancelled)
    messages = [_event_message(e) for e in events if e is not None]
    messages += [_task_message(task) for task in effects.tasks]
    messages += [_account_message(a) for a in effects.account_actions]
    return messages
