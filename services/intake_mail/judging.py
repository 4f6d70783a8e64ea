"""Step 2 of a batch: a fetched mail parsed and sorted by the domain into a :class:`Verdict`.

A mail becomes a customer contact (with its item and acknowledgement
decision), an automatic mail (not a contact, procedure 4.8) or bad input for
the quarantine, with the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from urllib.parse import quote

from pydantic import ValidationError

from services.common.dlq import describe_validation_error
from services.intake_mail.batches import Verdict
from services.intake_mail.domain import (
    MailRejected,
    ParsedMail,
    acknowledgement_decision,
    build_intake_item,
    item_id_for,
    parse_mail,
    triage,
)
from services.intake_mail.ports import AttachmentStore, FetchedMail, FolderState

__all__ = ["MailJudge", "source_ref"]

_THREAD_PARSE_BYTES = 256 * 1024


def source_ref(account: str, state: FolderState, uid: str) -> str:
    """The mail's address, RFC 5092 style: ``imap://user@host/INBOX;UIDVALIDITY=n/;UID=m``."""
    return f"{account}/{quote(state.folder)};UIDVALIDITY={state.uidvalidity}/;UID={uid}"


class MailJudge:
    """Judges fetched mails: parses them (big ones in a thread), sorts them, builds items."""

    def __init__(
        self, attachments: AttachmentStore, own_addresses: Sequence[str], max_bytes: int
    ) -> None:
        self._attachments = attachments
        self._own = tuple(own_addresses)
        self._max_bytes = max_bytes

    async def judge(
        self, account: str, state: FolderState, mail: FetchedMail, now: dt.datetime
    ) -> Verdict:
        """What the domain makes of one fetched mail (issue 4, step 2; procedure 4.8).

        An over-size or unparsable mail, or one whose item does not validate, is
        quarantined with its reason code; a mail that is not a customer contact is
        automatic; a contact carries its item and its acknowledgement decision.
        """
        ref = source_ref(account, state, mail.uid)
        if mail.raw is None:
            reason = f"mail of {mail.size} bytes is over the limit of {self._max_bytes} bytes"
            return Verdict(mail.uid, "quarantine", ref, reason, "over_size_limit")
        try:
            parsed = await self._parse(mail.raw)
        except MailRejected as rejected:
            return Verdict(
                mail.uid, "quarantine", ref, rejected.reason, rejected.reason_code, raw=mail.raw
            )
        sorting = triage(parsed)
        if not sorting.customer_contact:
            return Verdict(mail.uid, "automatic", ref, sorting.reason)
        try:
            item = build_intake_item(
                parsed,
                item_id=item_id_for(parsed.message_id, parsed.content_sha256),
                source_ref=ref,
                received_at_fallback=mail.arrived_at or now,
                attachments=await self._attachments.save(parsed.attachments),
            )
        except ValidationError as error:
            reason = describe_validation_error(error)[1]
            return Verdict(mail.uid, "quarantine", ref, reason, "invalid_item", raw=mail.raw)
        return Verdict(
            mail.uid,
            "contact",
            ref,
            sorting.reason,
            item=item,
            content_sha256=parsed.content_sha256,
            acknowledgement=acknowledgement_decision(parsed, self._own),
            in_reply_to=parsed.message_id,
        )

    async def _parse(self, raw: bytes) -> ParsedMail:
        if len(raw) > _THREAD_PARSE_BYTES:  # keep the event loop (IDLE, Kafka) responsive
            return await asyncio.to_thread(parse_mail, raw, max_bytes=self._max_bytes)
        return parse_mail(raw, max_bytes=self._max_bytes)
