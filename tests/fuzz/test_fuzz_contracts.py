"""Bad-input campaign, contracts: any broken JSON of any contract raises ``ValidationError`` only.

A consumer reads a message with the contract's validator; anything else
escaping it (an ``OverflowError``…) would crash the handler and redeliver
the message forever instead of dead-lettering it. Every concrete contract of
``schemas`` is covered: a valid document is built from its own JSON Schema,
then broken (a required field dropped, fields of the wrong type, unknown
fields, naive and out-of-range date-times, unknown schema versions, a wrong
discriminator, truncated or deeply nested JSON, invalid UTF-8, lone
surrogates, strings over their limits). Documents the validator accepts
must survive a JSON round trip.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas import Contract, DossierCommandAdapter, DossierEventAdapter, IntakeItem
from schemas.dossiers import DossierCommand, DossierEvent

SEED = 20260312
PER_CONTRACT = 16
Json = dict[str, Any]

STRINGS = ["123456789", "+33612345678", "69003", "a" * 64, "bad_input", "1.0", "x"]
WRONG: list[object] = [
    None, True, 0, -1, 10**30, 1.5, -1e308, "", "x" * 5000, [], {}, [[[]]], {"a": [1]},
    "2026-03-09", "not a date", "\u0000", "9" * 5000,
]  # fmt: skip
DATETIMES = [
    "2026-03-09T10:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "2026-02-30T10:00:00Z", "2026-03-09T25:00:00Z", "2026-03-09T10:00:00+24:00", "1e10", "",
]  # fmt: skip
VERSIONS = ["2.0", "0.9", "1", "1.0.0", "one", "", " 1.0", "99999999999999999999.0", "9" * 5000]


def _contracts() -> Iterator[type[Contract]]:
    pending: list[type[Contract]] = [Contract]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if not model.__name__.startswith("_") and model is not Contract:
            yield model


CONTRACTS = sorted(_contracts(), key=lambda model: model.__name__)


def _adapter(model: type[Contract]) -> TypeAdapter[Any] | type[BaseModel]:
    """What a consumer validates this contract's messages with."""
    if issubclass(model, get_union_members(DossierEvent)):
        return DossierEventAdapter
    if issubclass(model, get_union_members(DossierCommand)):
        return DossierCommandAdapter
    return model


def get_union_members(union: Any) -> tuple[type[Contract], ...]:
    """The member classes of an annotated discriminated union."""
    members = union.__origin__.__args__ if hasattr(union, "__origin__") else union.__args__
    return tuple(members)


def _instance(schema: Json, defs: Json, *, full: bool) -> object:
    """A value valid for ``schema``; ``full`` fills optional properties too.

    A discriminator (a ``const`` property) is always written: the unions need it.
    """
    if "$ref" in schema:
        return _instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, full=full)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        branches = [branch for branch in schema["anyOf"] if branch.get("type") != "null"]
        return _instance(branches[0], defs, full=full) if full and branches else None
    kind = schema.get("type")
    if kind == "object":
        required = set(schema.get("required", ()))
        return {
            name: _instance(sub, defs, full=full)
            for name, sub in schema.get("properties", {}).items()
            if name in required or "const" in sub or (full and name != "schema_version")
        }
    if kind == "array":
        return [_instance(schema["items"], defs, full=full)] if full and "items" in schema else []
    if kind == "integer":
        return schema.get("minimum", 0)
    if kind == "number":
        return 50.0
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return "2026-03-09T10:00:00+01:00"
    if schema.get("format") == "date":
        return "2026-03-09"
    pattern = schema.get("pattern")
    fitting = [text for text in STRINGS if pattern is None or re.search(pattern, text)]
    assert fitting, f"no sample string matches {pattern!r}: add one to STRINGS"
    return fitting[0]


def seeds(model: type[Contract]) -> list[Json]:
    """The minimal and the fullest valid documents of a contract, built from its JSON Schema."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    documents = []
    for full in (False, True):
        document = _instance(schema, defs, full=full)
        assert isinstance(document, dict)
        documents.append(document)
    return documents


def _datetime_fields(schema: Json) -> list[str]:
    return [
        name
        for name, sub in schema.get("properties", {}).items()
        if sub.get("format") == "date-time"
        or any(branch.get("format") == "date-time" for branch in sub.get("anyOf", ()))
    ]


def _mutations(model: type[Contract], rng: random.Random) -> list[tuple[str, str | bytes]]:
    minimal, full = seeds(model)
    schema = model.model_json_schema()
    found: list[tuple[str, str | bytes]] = []
    for name in schema.get("required", ()):
        found.append((f"no-{name}", json.dumps({k: v for k, v in full.items() if k != name})))
    for name in full:
        found.append((f"wrong-{name}", json.dumps(full | {name: rng.choice(WRONG)})))
    for name in _datetime_fields(schema):
        found.append((f"time-{name}", json.dumps(full | {name: rng.choice(DATETIMES)})))
    found.append(("version", json.dumps(minimal | {"schema_version": rng.choice(VERSIONS)})))
    found.append(("unknown-field", json.dumps(minimal | {"surprise": 1})))
    for key in ("type", "command"):
        if key in full:
            found.append((f"bad-{key}", json.dumps(full | {key: rng.choice(["", "x", 1, None])})))
    text = json.dumps(full)
    found += [
        ("truncated", text[: rng.randrange(len(text))]),
        ("nested", "[" * 3000 + text + "]" * 3000),
        ("array", json.dumps([full])),
        ("invalid-utf8", text.encode()[:-1] + b"\xff}"),
        ("surrogate", text[:-1] + ', "x": "\\ud800"}'),
        ("duplicate-key", text[:-1] + ", " + text[1:]),
        ("long-strings", json.dumps({k: "x" * 1_000_001 if isinstance(v, str) else v
                                      for k, v in full.items()})),
    ]  # fmt: skip
    return found


def corpus() -> list[tuple[type[Contract], str, str | bytes]]:
    """``PER_CONTRACT`` broken documents of every contract, the same on every run."""
    rng = random.Random(SEED)
    cases = []
    for model in CONTRACTS:
        mutations = _mutations(model, rng)
        picked = rng.sample(mutations, min(PER_CONTRACT, len(mutations)))
        cases += [(model, f"{model.__name__}-{name}", raw) for name, raw in picked]
    return cases


CASES = corpus()


def _validate(model: type[Contract], raw: str | bytes) -> BaseModel:
    validator = _adapter(model)
    if isinstance(validator, TypeAdapter):
        value: BaseModel = validator.validate_json(raw)
        return value
    return validator.model_validate_json(raw)


@pytest.mark.parametrize("model", CONTRACTS, ids=lambda model: model.__name__)
def test_fuzz_contract_seeds_are_valid(model: type[Contract]) -> None:
    for document in seeds(model):
        parsed = _validate(model, json.dumps(document))
        assert type(parsed) is model


def test_fuzz_contracts_corpus_covers_every_contract() -> None:
    assert len(CONTRACTS) >= 20
    assert {model for model, _, _ in CASES} == set(CONTRACTS)
    assert len(CASES) >= 15 * len(CONTRACTS)


def test_fuzz_contracts_campaign(exercised: Callable[[str, int], None]) -> None:
    failures = []
    for model, case_id, raw in CASES:
        try:
            parsed = _validate(model, raw)
        except ValidationError as error:
            if not error.errors() or not str(error).strip():
                failures.append(f"{case_id}: validation error without a reason")
            continue
        except Exception as exc:
            failures.append(f"{case_id}: {type(exc).__name__}: {exc}"[:300])
            continue
        if _validate(model, parsed.model_dump_json()) != parsed:
            failures.append(f"{case_id}: accepted document does not survive a JSON round trip")
    exercised("contracts", len(CASES))
    assert failures == []


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_fuzz_contract_datetime_with_no_utc_time_is_a_validation_error(moment: str) -> None:
    """Regression: converting such a date-time to UTC raised ``OverflowError`` past pydantic."""
    document = {"item_id": "x", "channel": "email", "received_at": moment, "source_ref": "s"}
    with pytest.raises(ValidationError, match="out of range once converted to UTC"):
        IntakeItem.model_validate_json(json.dumps(document))
