"""Asterisk AMI events: ``Key: value`` blocks separated by blank lines (procedure 5.1.1).

A payload holds one or more AMI event blocks (at most 1,000). The call id is
the block's ``Linkedid`` (shared by every channel of one call), else its
``Uniqueid``. The *primary* channel is the one whose ``Uniqueid`` equals the
``Linkedid``: the caller's channel on an inbound call.

=====================================  ===========================================
``Newchannel`` (primary channel)       the call started: ``CallerIDNum`` →
                                       caller, ``Exten`` → the dialled number
``Newchannel`` (other channel)         *other* (an agent's leg was created)
``DialEnd`` with ``DialStatus:         an agent answered: the agent is
ANSWER``                               ``DestCallerIDNum`` (else the
                                       ``DestChannel`` without its suffix)
``DialEnd`` (other status)             *other* (a ring attempt failed)
``Hangup`` (primary channel)           the call ended
``Hangup`` (other channel)             *other* (an agent's leg hung up)
``AgentComplete``                      the queue call ended, answered by
                                       ``MemberName``, ``TalkTime`` seconds
``UserEvent: IvrChoice``               an SVI choice (``Choice``), sent by the
                                       dialplan ``UserEvent(IvrChoice,Choice: 2)``
``UserEvent: WrapUp``                  wrap-up from the agent desktop:
                                       ``Code``, ``Note``, ``Agent``
=====================================  ===========================================

Every other event (``VarSet``, ``Newexten``, ``DialBegin``, other user events,
action responses…) is ignored and counted. Event times come from the
``Timestamp`` header (``timestampevents = yes`` in ``manager.conf``), else the
caller's ``received_at``. A line that is not ``Key: value`` rejects the
whole payload.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from services.intake_phone.domain import _read
from services.intake_phone.domain.events import (
    CallEvent,
    Ignored,
    Normalised,
    PayloadRejected,
)
from services.intake_phone.domain.numbers import party

__all__ = ["MAX_BLOCKS", "parse_ami", "split_blocks"]

MAX_BLOCKS: Final = 1000
_KEY = re.compile(r"^[A-Za-z0-9_()./-]{1,64}$")
_BLANK_LINES = re.compile(r"\r?\n[ \t]*\r?\n")
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]{6,}(;\d+)?$")


def split_blocks(text: str) -> tuple[dict[str, str], ...]:
    """Split AMI text into its ``Key: value`` blocks; the first occurrence of a key wins.

    Rule of procedure 5.1.1 applied to Asterisk: blocks are separated by blank
    lines; the ``Asterisk Call Manager/x.y`` banner line is skipped; any other
    line without a ``Key:`` prefix raises :class:`PayloadRejected`.
    """
    blocks: list[dict[str, str]] = []
    for chunk in _BLANK_LINES.split(text.replace("\r\n", "\n").strip()):
        block: dict[str, str] = {}
        for line in chunk.split("\n"):
            line = line.rstrip("\r")
            if not line.strip() or line.startswith("Asterisk Call Manager/"):
                continue
            key, sep, value = line.partition(":")
            key = key.strip()
            if not sep or not _KEY.match(key):
                raise PayloadRejected("malformed_ami", "a line is not 'Key: value'")
            block.setdefault(key, value.strip())
        if block:
            blocks.append(block)
        if len(blocks) > MAX_BLOCKS:
            raise PayloadRejected("batch_too_large", f"more than {MAX_BLOCKS} AMI blocks")
    if not blocks:
        raise PayloadRejected("empty_payload", "no AMI block in the payload")
    return tuple(blocks)


def parse_ami(payload: bytes | str, *, received_at: dt.datetime | None = None) -> Normalised:
    """Read AMI event blocks into normalised call events (module docstring).

    Rule of procedure 5.1.1 (every call is received as a contact): the four
    call events (``Newchannel``, ``DialEnd``, ``Hangup``, ``AgentComplete``)
    and our two ``UserEvent`` conventions become :class:`CallEvent` values,
    other events are ignored and counted, a malformed block raises
    :class:`PayloadRejected`. ``received_at`` stands in for a missing
    ``Timestamp``.
    """
    result = Normalised()
    for block in split_blocks(_read.decode_text(payload)):
        try:
            result = result + _block(block, received_at)
        except ValidationError as exc:
            raise PayloadRejected("invalid_field", "an AMI field is out of range") from exc
    return result


def _ignored(reason_code: str, reason: str) -> Normalised:
    return Normalised(ignored=(Ignored(reason_code, reason),))


def _block(block: Mapping[str, str], received_at: dt.datetime | None) -> Normalised:
    name = block.get("Event")
    if name is None:
        if "Response" in block:
            return _ignored("ami_response", "an action response, not an event")
        raise PayloadRejected("missing_field", "an AMI block has no Event")
    user_event = (block.get("UserEvent") or "").lower() if name == "UserEvent" else ""
    known = {"Newchannel", "DialEnd", "Hangup", "AgentComplete"}
    if name not in known and user_event not in {"ivrchoice", "wrapup"}:
        return _ignored("unsupported_event", "AMI event not read")
    uniqueid = _read.call_id(block.get("Uniqueid"), "Uniqueid")
    linkedid = _read.call_id(block.get("Linkedid") or uniqueid, "Linkedid")
    primary = uniqueid == linkedid
    raw_ts = block.get("Timestamp")
    at = _read.time_or_fallback(
        _read.epoch_time(raw_ts, "Timestamp") if raw_ts else None, received_at, "Timestamp"
    )
    base: dict[str, object] = {"platform": "asterisk", "call_id": linkedid, "at": at}

    if name == "Newchannel":
        key = f"asterisk:{uniqueid}:newchannel"
        if not primary:
            return _event(base, "other", key)
        hidden = (block.get("CallerIDName") or "").strip().lower() in {"anonymous", "restricted"}
        caller = party(_read.opt_str(block, "CallerIDNum", max_len=64), hidden=hidden)
        exten = _read.opt_str(block, "Exten", max_len=64)
        called = party(None if exten == "s" else exten)
        return _event(
            base,
            "started",
            key,
            caller=caller.number,
            caller_hidden=caller.hidden,
            called=called.number,
        )
    if name == "DialEnd":
        status = (block.get("DialStatus") or "").upper()
        dest = block.get("DestUniqueid") or ""
        key = f"asterisk:{uniqueid}:dialend:{dest[:128]}:{status[:32]}"
        if status != "ANSWER":
            return _event(base, "other", key)
        return _event(base, "answered", key, agent=_dial_agent(block), answered=True)
    if name == "Hangup":
        key = f"asterisk:{uniqueid}:hangup"
        return _event(base, "ended" if primary else "other", key)
    if name == "AgentComplete":
        agent = _read.opt_str(block, "MemberName", max_len=256) or _read.opt_str(
            block, "Interface", max_len=256
        )
        queue = (block.get("Queue") or "")[:64]
        return _event(
            base,
            "ended",
            f"asterisk:{uniqueid}:agentcomplete:{queue}",
            agent=agent,
            answered=True,
            duration_s=_read.opt_count(block.get("TalkTime"), "TalkTime"),
        )
    if user_event == "ivrchoice":
        choice = _read.opt_str(block, "Choice", max_len=64)
        if choice is None:
            raise PayloadRejected("missing_field", "UserEvent IvrChoice needs a Choice")
        stamp = (raw_ts or "")[:32]
        return _event(base, "ivr", f"asterisk:{uniqueid}:ivr:{stamp}:{choice}", ivr_choice=choice)
    code = _read.opt_str(block, "Code", max_len=256)
    note = _read.opt_str(block, "Note", max_len=20_000)
    if code is None and note is None:
        raise PayloadRejected("missing_field", "UserEvent WrapUp needs a Code or a Note")
    stamp = (raw_ts or "")[:32]
    return _event(
        base,
        "wrap_up",
        f"asterisk:{uniqueid}:wrapup:{stamp}",
        agent=_read.opt_str(block, "Agent", max_len=256),
        wrap_up_code=code,
        wrap_up_note=note,
    )


def _dial_agent(block: Mapping[str, str]) -> str | None:
    number = _read.opt_str(block, "DestCallerIDNum", max_len=64)
    if number is not None and number.lower() not in {"<unknown>", "unknown"}:
        return number
    channel = _read.opt_str(block, "DestChannel", max_len=256)
    return None if channel is None else _CHANNEL_SUFFIX.sub("", channel)


def _event(base: Mapping[str, object], kind: str, key: str, **fields: object) -> Normalised:
    values = {**base, "kind": kind, "dedupe_key": key, **fields}
    return Normalised(events=(CallEvent.model_validate(values),))
