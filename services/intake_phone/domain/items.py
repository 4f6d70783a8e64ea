"""From an assembled call to the ``IntakeItem`` on ``intake.items.v1`` (procedure 4.1, 5.1.1).

``item_id`` is ``phone:<platform>:<call id>``: re-ingesting the same call
(a redelivery, a restart) never yields a second item. ``received_at`` is the
start of the call (the contact date). The text is the agent's wrap-up note,
the only free text a call has; the wrap-up code travels in ``call``. The
caller's number goes to ``sender.mobile`` only when it is a mobile, since
that field is where the SLA watcher may text a holding message and where the
router looks for the customer. A call that ended in the voicemail gets the
subject "Message vocal" so the queue sees at once that the customer awaits a
call back.
"""

from __future__ import annotations

from typing import Final

from schemas import CallDetails, IntakeItem, SenderHints
from services.intake_phone.domain.assembly import CallState, facts
from services.intake_phone.domain.numbers import is_mobile

__all__ = ["VOICEMAIL_SUBJECT", "item_id", "to_intake_item"]

VOICEMAIL_SUBJECT: Final = "Message vocal"


def item_id(state: CallState) -> str:
    """The stable item id of a call: ``phone:<platform>:<platform call id>`` (procedure 4.1)."""
    return f"phone:{state.platform}:{state.call_id}"


def to_intake_item(state: CallState, *, closed_by_timeout: bool = False) -> IntakeItem | None:
    """Build the call's ``IntakeItem`` (channel phone); ``None`` while the call has no event.

    Rule of procedure 4.1 (every request is recorded, once) and 5.1.1 (the
    call contact): stable ``item_id`` from the platform's call id, contact
    date = call start, ``CallDetails`` from the folded facts, text = wrap-up
    note, ``sender.mobile`` when the caller is a mobile. Whether the call is
    routed at all is :func:`..perimeter.perimeter`'s decision, not this one's.
    """
    found = facts(state)
    if found is None:
        return None
    mobile = found.caller if is_mobile(found.caller) else None
    return IntakeItem(
        item_id=item_id(state),
        channel="phone",
        received_at=found.started_at,
        source_ref=f"{state.platform} call {state.call_id}",
        sender=SenderHints(mobile=mobile),
        subject=VOICEMAIL_SUBJECT if found.voicemail and not found.answered else None,
        text=found.wrap_up_note or "",
        call=CallDetails(
            caller=found.caller,
            called=found.called,
            ivr_path=found.ivr_path,
            agent=found.agent,
            answered=found.answered,
            duration_s=found.duration_s,
            wrap_up_code=found.wrap_up_code,
            wrap_up_note=found.wrap_up_note,
            voicemail=found.voicemail,
            closed_by_timeout=closed_by_timeout,
        ),
    )
