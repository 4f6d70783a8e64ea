"""The rule files: bundled rules load, and a bad entry is named in the error (STYLE rule 3)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from schemas.topics import SERVICE_QUEUES
from services.router.domain.rules import (
    DUNNING_BLOCKING_CODES,
    REQUIRED_TYPE_CODES,
    SENSITIVE_CODES,
    RuleSet,
)
from services.router.rules_loader import RULES_DIRECTORY, RulesError, load_rules


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def test_bundled_rules_hold_every_required_type(rules: RuleSet) -> None:
    codes = {entry.code for entry in rules.dictionary.types}
    assert set(REQUIRED_TYPE_CODES) <= codes
    assert rules.dictionary.fallback == "INFO"


def test_every_queue_is_a_known_service_queue(rules: RuleSet) -> None:
    assert {entry.service for entry in rules.dictionary.types} <= set(SERVICE_QUEUES)


def test_exactly_the_procedure_types_block_dunning(rules: RuleSet) -> None:
    blocking = {entry.code for entry in rules.dictionary.types if entry.blocks_dunning}
    assert blocking == set(DUNNING_BLOCKING_CODES)  # 4.13, 5.1.7.1


def test_rdr_goes_to_the_escalation_team(rules: RuleSet) -> None:
    assert rules.dictionary.get("RDR").service == "escalations"
    assert rules.escalation.tsa_boxes == ("60002",)


def test_every_sensitive_category_has_cues(rules: RuleSet) -> None:
    assert set(rules.sensitive.categories) == set(SENSITIVE_CODES)
    assert all(rules.sensitive.categories[code].cues for code in SENSITIVE_CODES)


def test_rule_set_is_frozen(rules: RuleSet) -> None:
    with pytest.raises(ValidationError):
        rules.version = "2"  # type: ignore[misc]


def test_compiled_rules_are_built_once(rules: RuleSet) -> None:
    assert rules.compiled is rules.compiled


def test_dictionary_get_unknown_code(rules: RuleSet) -> None:
    with pytest.raises(KeyError):
        rules.dictionary.get("NOPE")


def _types(data: dict[str, Any]) -> list[dict[str, Any]]:
    types: list[dict[str, Any]] = data["types"]
    return types


def _entry(data: dict[str, Any], code: str) -> dict[str, Any]:
    return next(t for t in _types(data) if t["code"] == code)


def _bad_service(data: dict[str, Any]) -> None:
    _entry(data, "FUITE")["service"] = "plumbers"


def _no_fuite(data: dict[str, Any]) -> None:
    data["types"] = [t for t in _types(data) if t["code"] != "FUITE"]


def _duplicate(data: dict[str, Any]) -> None:
    _types(data).append(dict(_entry(data, "INFO")))


def _facture_does_not_block(data: dict[str, Any]) -> None:
    _entry(data, "FACTURE")["blocks_dunning"] = False


def _bad_cue(data: dict[str, Any]) -> None:
    _entry(data, "COMPTEUR")["lexicon"]["cues"].append({"phrase": "compteur ..", "weight": 2})


def _twice(data: dict[str, Any]) -> None:
    _entry(data, "INDEX")["lexicon"]["cues"].append("index")


def _bad_kind(data: dict[str, Any]) -> None:
    _entry(data, "PRESSION")["kind"] = "plainte"


def _unknown_field(data: dict[str, Any]) -> None:
    _entry(data, "ICT")["owner"] = "field_ops"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(_bad_service, r"types\[\d+\] \(FUITE\)\.service.*plumbers", id="service"),
        pytest.param(_no_fuite, r"missing from the dictionary: FUITE", id="missing-type"),
        pytest.param(_duplicate, r"listed twice: INFO", id="duplicate-type"),
        pytest.param(_facture_does_not_block, r"FACTURE must block dunning", id="dunning"),
        pytest.param(_bad_cue, r"\(COMPTEUR\)\.lexicon\.cues.*'compteur \.\.'", id="bad-cue"),
        pytest.param(_twice, r"\(INDEX\)\.lexicon\.cues.*'index' is listed twice", id="dup-cue"),
        pytest.param(_bad_kind, r"\(PRESSION\)\.kind", id="kind"),
        pytest.param(_unknown_field, r"\(ICT\)\.owner", id="unknown-field"),
    ],
)
def test_a_bad_dictionary_entry_is_named(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(RULES_DIRECTORY, directory)
    path = directory / "dictionary.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    mutate(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulesError, match=message) as caught:
        load_rules(directory)
    assert str(caught.value).startswith("invalid rules:\n  dictionary.yaml: ")


def test_a_missing_sensitive_category_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(RULES_DIRECTORY, directory)
    path = directory / "sensitive.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["categories"]["rgpd"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulesError, match=r"sensitive\.yaml: categories: .*missing: rgpd"):
        load_rules(directory)


def test_a_bad_tsa_box_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(RULES_DIRECTORY, directory)
    (directory / "escalation.yaml").write_text(
        "tsa_boxes: ['6002']\nlexicon: {cues: []}\n", encoding="utf-8"
    )
    with pytest.raises(RulesError, match=r"escalation\.yaml: tsa_boxes.*'6002'"):
        load_rules(directory)


def test_an_unreadable_or_missing_file_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(RULES_DIRECTORY, directory)
    (directory / "urgency.yaml").unlink()
    with pytest.raises(RulesError, match=r"urgency\.yaml: cannot read"):
        load_rules(directory)


def test_invalid_yaml_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(RULES_DIRECTORY, directory)
    (directory / "complaint.yaml").write_text("lexicon: [unclosed", encoding="utf-8")
    with pytest.raises(RulesError, match=r"complaint\.yaml: not valid YAML"):
        load_rules(directory)


def test_spelling_file_is_optional_and_extends_the_builtin_table(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(RULES_DIRECTORY, directory)
    (directory / "spelling.yaml").unlink()
    assert load_rules(directory).spelling == {}
    (directory / "spelling.yaml").write_text(
        "misspellings: {Degrevemmment: dégrèvement}\n", encoding="utf-8"
    )
    loaded = load_rules(directory)
    assert loaded.spelling == {"degrevemmment": "degrevement"}
    assert loaded.compiled.spelling["degrevemmment"] == "degrevement"
    assert loaded.compiled.spelling["fuitte"] == "fuite"
