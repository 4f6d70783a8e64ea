"""The rows one routing batch writes, gathered in memory and written set-wise."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from schemas import IntakeItem
from services.router.domain.dossiers import AttachToDossier, CancelRequest
from services.router.domain.effects import Effects

__all__ = ["RoutingBatch"]


@dataclass
class RoutingBatch:
    """Dossier rows, status updates, contact rows and processed ids of one batch.

    A dossier this batch opens and a later item of the batch cancels is written
    cancelled (no update of a row not yet written); status updates of dossiers
    that already exist are written before the new rows, so that a request
    cancelled and asked again in one batch never holds two open dossiers of one
    type at once (the store's ``uq_dossiers_open_request``).
    """

    consumer: str
    now: dt.datetime
    dossiers: list[dict[str, object]] = field(default_factory=list)
    updates: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    contacts: list[dict[str, object]] = field(default_factory=list)
    processed: list[dict[str, object]] = field(default_factory=list)
    _opened: dict[str, dict[str, object]] = field(default_factory=dict, repr=False)

    def add(
        self, item: IntakeItem, customer_key: str | None, effects: Effects, outcome: str
    ) -> str | None:
        """Record what one item's routing writes; return the dossier it concerns."""
        decision = effects.decision
        dossier_id: str | None = None
        if isinstance(decision, AttachToDossier):
            dossier_id, role = decision.dossier_id, "multi_contact"
        elif isinstance(decision, CancelRequest):
            dossier_id, role = decision.dossier.dossier_id, "cancellation"
            ended: dict[str, object] = {"status": "cancelled", "closed_at": self.now}
            if (new_row := self._opened.get(dossier_id)) is not None:
                new_row.update(ended)
            else:
                self.updates.append((dossier_id, ended))
        elif effects.opened is not None:
            opened = effects.opened
            dossier_id, role = opened.dossier_id, "initial"
            row: dict[str, object] = {
                "dossier_id": dossier_id,
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
                "opened_at": self.now,
                "closed_at": None,
                "linked_dossier_id": opened.linked_dossier_id,
            }
            self._opened[dossier_id] = row
            self.dossiers.append(row)
        if dossier_id is not None:
            holder = effects.attached or effects.opened
            self.contacts.append(
                {
                    "item_id": item.item_id,
                    "dossier_id": dossier_id,
                    "channel": item.channel,
                    "role": role,
                    "contact_date": item.received_at,
                    "attached_at": self.now,
                    "sender_is_holder": holder.sender_is_holder if holder else True,
                }
            )
        self.processed.append(
            {
                "consumer": self.consumer,
                "message_id": item.item_id,
                "outcome": outcome,
                "dossier_id": dossier_id,
                "processed_at": self.now,
            }
        )
        return dossier_id
