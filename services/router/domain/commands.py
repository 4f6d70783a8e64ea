"""What a downstream service's command does to a dossier (``dossier.commands.v1``).

Close (4.15), cancel (5.1.7.2 a), reply sent (4.11), needs field work and
awaiting a third party (4.12), requalify (5.1.6 NB). Each emits its event;
closing or cancelling a dossier that blocks dunning unblocks it (4.13). A
requalification into another type follows the type: it blocks or unblocks
dunning when the new type does so and the old one did not (or the reverse), and
hands a dossier that is not sensitive to the new type's owner with a task.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from schemas import AccountAction, Task
from schemas.dossiers import (
    AwaitThirdParty,
    CancelDossier,
    CloseDossier,
    DossierCancelled,
    DossierClosed,
    DossierCommand,
    DossierEvent,
    DossierRequalified,
    Kind,
    RecordReply,
    ReplySent,
    RequalifyDossier,
    RequireFieldWork,
    ResumeFromThirdParty,
    ThirdPartyAwaited,
    ThirdPartyReceived,
    Urgency,
)

__all__ = ["CommandEffects", "CommandPolicy", "DossierState", "apply_command"]


@dataclass(frozen=True, slots=True)
class DossierState:
    """The columns of a dossier a command can read or change."""

    dossier_id: str
    status: str
    dossier_type: str
    kind: Kind
    urgency: Urgency
    needs_field_work: bool
    customer_ref: str | None
    blocks_dunning: bool
    service: str = "customer_service"
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """What the request dictionary says of each type: does it block dunning, who owns it."""

    dunning_types: frozenset[str] = frozenset()
    owners: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Ids:
    event_id: str
    dossier_id: str


@dataclass(frozen=True, slots=True)
class CommandEffects:
    """Column changes, events and account actions produced by one command."""

    updates: dict[str, object] = field(default_factory=dict)
    events: tuple[DossierEvent, ...] = ()
    account_actions: tuple[AccountAction, ...] = ()
    tasks: tuple[Task, ...] = ()
    outcome: str = "applied"


def apply_command(
    state: DossierState,
    command: DossierCommand,
    now: dt.datetime,
    policy: CommandPolicy | None = None,
) -> CommandEffects:
    """Apply one command to a dossier; a command on an ended dossier changes nothing."""
    if state.status != "open":
        return CommandEffects(outcome=f"ignored: dossier {state.status}")
    ids = _Ids(f"{state.dossier_id}:{command.command_id}", state.dossier_id)
    if isinstance(command, CloseDossier | CancelDossier):
        return _end(state, command, now, ids)
    if isinstance(command, RecordReply):
        return CommandEffects(
            events=(
                ReplySent(
                    event_id=ids.event_id,
                    dossier_id=ids.dossier_id,
                    occurred_at=now,
                    medium=command.medium,
                ),
            )
        )
    if isinstance(command, AwaitThirdParty):
        awaited = ThirdPartyAwaited(
            event_id=ids.event_id,
            dossier_id=ids.dossier_id,
            occurred_at=now,
            third_party=command.third_party,
        )
        return CommandEffects(events=(awaited,))
    if isinstance(command, ResumeFromThirdParty):
        return CommandEffects(
            events=(
                ThirdPartyReceived(
                    event_id=ids.event_id, dossier_id=ids.dossier_id, occurred_at=now
                ),
            )
        )
    if isinstance(command, RequireFieldWork):
        return _requalify(state, ids, now, needs_field_work=True, reason="intervention terrain")
    return _requalify_to(state, command, ids, now, policy or CommandPolicy())


def _end(
    state: DossierState,
    command: CloseDossier | CancelDossier,
    now: dt.datetime,
    ids: _Ids,
) -> CommandEffects:
    closing = isinstance(command, CloseDossier)
    event: DossierEvent = (
        DossierClosed(
            event_id=ids.event_id, dossier_id=ids.dossier_id, occurred_at=now, reason=command.reason
        )
        if closing
        else DossierCancelled(
            event_id=ids.event_id, dossier_id=ids.dossier_id, occurred_at=now, reason=command.reason
        )
    )
    actions: tuple[AccountAction, ...] = ()
    if state.blocks_dunning and state.customer_ref:
        actions = (
            AccountAction(
                action_id=f"{state.dossier_id}:unblock_dunning",
                action="unblock_dunning",
                customer_ref=state.customer_ref,
                dossier_id=state.dossier_id,
                occurred_at=now,
                reason=f"dossier {state.dossier_type} {'clôturé' if closing else 'annulé'} (4.13)",
            ),
        )
    status = "closed" if closing else "cancelled"
    return CommandEffects(
        updates={"status": status, "closed_at": now}, events=(event,), account_actions=actions
    )


def _requalify_to(
    state: DossierState,
    command: RequalifyDossier,
    ids: _Ids,
    now: dt.datetime,
    policy: CommandPolicy,
) -> CommandEffects:
    effects = _requalify(
        state,
        ids,
        now,
        dossier_type=command.dossier_type or state.dossier_type,
        kind=command.kind or state.kind,
        urgency=command.urgency or state.urgency,
        reason=command.reason,
    )
    new_type = str(effects.updates["dossier_type"])
    if new_type == state.dossier_type:
        return effects
    why = f"dossier requalifié {state.dossier_type} → {new_type}"
    actions: tuple[AccountAction, ...] = ()
    blocks = new_type in policy.dunning_types
    if blocks != state.blocks_dunning and state.customer_ref:
        # 4.13: dunning is blocked while a Facture/Règlement/Dégrèvement/RDR request is open
        action: Literal["block_dunning", "unblock_dunning"] = (
            "block_dunning" if blocks else "unblock_dunning"
        )
        actions = (
            AccountAction(
                action_id=f"{ids.event_id}:{action}",
                action=action,
                customer_ref=state.customer_ref,
                dossier_id=state.dossier_id,
                occurred_at=now,
                reason=f"{why} (4.13)",
            ),
        )
    updates = dict(effects.updates)
    tasks: tuple[Task, ...] = ()
    owner = policy.owners.get(new_type)
    if owner and owner != state.service and not state.sensitive:  # 5.1.4: sensitive stays
        updates["service"] = owner
        tasks = (
            Task(
                task_id=f"{ids.event_id}:handle_request",
                dossier_id=state.dossier_id,
                service=owner,
                action="handle_request",
                created_at=now,
                dossier_type=new_type,
                kind=updates["kind"],  # type: ignore[arg-type]
                urgency=updates["urgency"],  # type: ignore[arg-type]
                customer_ref=state.customer_ref,
                reasons=(f"{why}: nouveau service {owner} (5.1.6 NB)",),
            ),
        )
    return CommandEffects(
        updates=updates, events=effects.events, account_actions=actions, tasks=tasks
    )


def _requalify(
    state: DossierState,
    ids: _Ids,
    now: dt.datetime,
    *,
    reason: str,
    dossier_type: str | None = None,
    kind: Kind | None = None,
    urgency: Urgency | None = None,
    needs_field_work: bool | None = None,
) -> CommandEffects:
    new_type = dossier_type or state.dossier_type
    new_kind = kind or state.kind
    new_urgency = urgency or state.urgency
    field_work = state.needs_field_work if needs_field_work is None else needs_field_work
    event = DossierRequalified(
        event_id=ids.event_id,
        dossier_id=ids.dossier_id,
        occurred_at=now,
        dossier_type=new_type,
        kind=new_kind,
        urgency=new_urgency,
        needs_field_work=field_work,
        reason=reason,
    )
    updates: dict[str, object] = {
        "dossier_type": new_type,
        "kind": new_kind,
        "urgency": new_urgency,
        "needs_field_work": field_work,
    }
    return CommandEffects(updates=updates, events=(event,))
