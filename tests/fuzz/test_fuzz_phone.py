"""Bad-input campaign, telephony: every adapter's broken payloads only raise ``PayloadRejected``.

Unlike ``tests/unit/intake_phone/test_phone_fuzz.py`` (hypothesis over
arbitrary and near-valid documents), the cases here start from the
platforms' realistic samples (``services/intake_phone/samples``) and break
them where readers break: a field of the wrong type, integers of thousands of
digits, JSON nested thousands deep, duplicate keys, NaN, invalid UTF-8, a
BOM, bodies over the size limit; Twilio forms with bad percent-escapes,
repeated and missing fields, thousands of parameters; AMI text without
colons, with bare CRs, NULs, huge values and thousands of blocks. Whatever an
adapter accepts must fold into a valid ``IntakeItem``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, quote

import pytest

import services.intake_phone
from services.intake_phone.domain import (
    CallEvent,
    PayloadRejected,
    fold,
    normalise,
    perimeter,
    to_intake_item,
)
from services.intake_phone.domain._read import MAX_PAYLOAD_BYTES

SEED = 20260311
PER_PLATFORM = 90
SAMPLES = Path(services.intake_phone.__file__).parent / "samples"
RECEIVED = dt.datetime(2025, 1, 14, 13, 30, 20, tzinfo=dt.UTC)
REASON_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
HUGE_DIGITS = "9" * 5000  # over Python's 4,300-digit limit for int("…")

WRONG: list[object] = [
    None, True, False, 0, -1, 2**63, 10**40, 1e308, -0.0, 1.5, "", " ", "x" * 10_000, [], {},
    [[[]]], {"a": {"b": {"c": []}}}, "\u0000", "\ud7ff", "2025-13-45T99:99:99Z", "NaN", "-1",
    "1e999", "0x10", "١٢٣", "+33612345678\n", "CA" + "f" * 300,
]  # fmt: skip
RAW_JSON = [HUGE_DIGITS, "NaN", "Infinity", "-Infinity", "1e99999", "[" * 5000 + "]" * 5000]


def _sample(prefix: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted(SAMPLES.glob(f"{prefix}_*"))]


def _paths(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


def _set(document: object, path: tuple[object, ...], value: object) -> object:
    if not path:
        return value
    parent: object = document
    for step in path[:-1]:
        parent = parent[step]  # type: ignore[index]
    parent[path[-1]] = value  # type: ignore[index]
    return document


def _dumps(value: object) -> str:
    return json.dumps(value, default=lambda d: float(d) if isinstance(d, Decimal) else str(d))


def _broken_json(rng: random.Random, samples: list[bytes]) -> bytes | str:
    document = json.loads(rng.choice(samples), parse_float=Decimal)
    shape = rng.randrange(8)
    path = rng.choice(_paths(document))
    if shape <= 2:
        return _dumps(_set(document, path, rng.choice(WRONG)))
    if shape == 3:  # a raw token JSON writers never produce
        marker = "__RAW__"
        return _dumps(_set(document, path, marker)).replace(f'"{marker}"', rng.choice(RAW_JSON))
    if shape == 4 and path and isinstance(path[-1], str):  # a key dropped, or doubled
        text = _dumps(document)
        key = json.dumps(path[-1])
        if rng.random() < 0.5:
            return text.replace(key + ":", key + ": null, " + key + ":", 1)
        return text.replace(key, json.dumps(path[-1] + "\u200b"), 1)
    raw = _dumps(document).encode()
    if shape == 5:
        return raw[: rng.randrange(len(raw))]
    if shape == 6:
        position = rng.randrange(len(raw))
        return raw[:position] + rng.choice([b"\xff", b"\xc3", b"\x00", b"\xef\xbb\xbf"]) + raw
    return raw + b" " * (MAX_PAYLOAD_BYTES - len(raw) + rng.randint(1, 10))


def _broken_twilio(rng: random.Random, samples: list[bytes]) -> bytes | str:
    pairs = parse_qsl(rng.choice(samples).decode(), keep_blank_values=True)
    shape = rng.randrange(7)
    if shape <= 1 and pairs:
        index = rng.randrange(len(pairs))
        junk = rng.choice(WRONG)
        pairs[index] = (pairs[index][0], str(junk) if not isinstance(junk, str) else junk)
    elif shape == 2 and pairs:
        pairs.pop(rng.randrange(len(pairs)))
    elif shape == 3 and pairs:
        pairs.append(rng.choice(pairs))
    elif shape == 4:
        pairs += [(f"P{n}", "v") for n in range(rng.choice([150, 250, 5000]))]
    body = "&".join(f"{quote(key)}={quote(value, safe='')}" for key, value in pairs)
    if shape == 5:
        junk = rng.choice(["%", "%Z", "%ff%fe", "%00", ";", "=", "&&&", "CallSid", "+%2", "%C3"])
        position = rng.randrange(len(body) + 1)
        return body[:position] + junk + body[position:]
    if shape == 6:
        return body.encode()[: rng.randrange(len(body) + 1)] + rng.choice([b"\xff", b"", b"\x00"])
    return body


def _broken_ami(rng: random.Random, samples: list[bytes]) -> bytes | str:
    text = rng.choice(samples).decode()
    lines = text.splitlines()
    shape = rng.randrange(8)
    if shape == 0:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(["no colon", ":", ": x", "::::"]))
    elif shape == 1:
        index = rng.randrange(len(lines))
        key = lines[index].split(":", 1)[0] or "Timestamp"
        lines[index] = f"{key}: {rng.choice([HUGE_DIGITS, 'x' * 100_000, '-1', '1e9', ''])}"
    elif shape == 2:
        index = rng.randrange(len(lines))
        lines.insert(index, lines[index])  # a header twice in one block
    elif shape == 3:
        return "\r".join(lines)
    elif shape == 4:
        return "\n".join(lines).replace(":", "\x00", rng.randint(1, 5))
    elif shape == 5:
        return ("Event: VarSet\nUniqueid: 1.1\n\n" * rng.choice([2000, 20_000]))[:MAX_PAYLOAD_BYTES]
    elif shape == 6:
        return text.encode()[: rng.randrange(len(text))] + b"\xc3"
    else:
        index = rng.randrange(len(lines))
        lines[index] = lines[index] + rng.choice(["\x7f", "\u2028", "\ufeff", " " * 5000])
    return "\n".join(lines)


BREAKERS: dict[str, Callable[[random.Random, list[bytes]], bytes | str]] = {
    "generic": _broken_json,
    "ringover": _broken_json,
    "twilio": _broken_twilio,
    "asterisk": _broken_ami,
}


def corpus(platform: str) -> list[tuple[str, bytes | str]]:
    """``PER_PLATFORM`` broken payloads of one platform, the same on every run."""
    rng = random.Random(f"{SEED}-{platform}")
    samples = _sample(platform)
    return [(f"{platform}-{n}", BREAKERS[platform](rng, samples)) for n in range(PER_PLATFORM)]


def check_payload(
    platform: str, payload: bytes | str, received_at: dt.datetime | None
) -> str | None:
    """Only ``PayloadRejected`` (with a reason) escapes; what is accepted makes valid items."""
    try:
        result = normalise(platform, payload, received_at=received_at)
    except PayloadRejected as rejected:
        if not REASON_CODE.match(rejected.reason_code) or not rejected.reason.strip():
            return f"rejection without a proper reason: {rejected!r}"
        return None
    calls: dict[tuple[str, str], list[CallEvent]] = {}
    for event in result.events:
        calls.setdefault((event.platform, event.call_id), []).append(event)
    for events in calls.values():
        state = fold(events)
        item = to_intake_item(state)
        if item is None or item.channel != "phone":
            return f"accepted events make no phone item: {item!r}"
        perimeter(state, ("+33972108080",), ("10",))
    return None


@pytest.mark.parametrize("platform", sorted(BREAKERS))
def test_fuzz_phone_campaign(platform: str, exercised: Callable[[str, int], None]) -> None:
    cases = corpus(platform)
    assert len(cases) == PER_PLATFORM
    assert corpus(platform) == cases
    failures = []
    for number, (case_id, payload) in enumerate(cases):
        try:
            problem = check_payload(platform, payload, RECEIVED if number % 2 else None)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"[:300]
        if problem is not None:
            failures.append(f"{case_id}: {problem}")
    exercised(f"phone_{platform}", len(cases))
    assert failures == []
