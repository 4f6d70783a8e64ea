"""Read the router's qualification rules from YAML and validate them (STYLE rule 3).

The rule files live in ``services/router/rules/`` and ship with the package;
operations staff may point the router at another directory holding the same
files. A bad file or entry stops start-up with an error naming the file, the
entry (by its code or phrase where it has one) and what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from services.router.domain.rules import RuleSet

__all__ = ["RULES_DIRECTORY", "RULE_FILES", "RulesError", "load_rules"]

RULES_DIRECTORY = Path(__file__).with_name("rules")

RULE_FILES: Mapping[str, str] = {
    "dictionary": "dictionary.yaml",
    "sensitive": "sensitive.yaml",
    "urgency": "urgency.yaml",
    "complaint": "complaint.yaml",
    "perimeter": "perimeter.yaml",
    "escalation": "escalation.yaml",
    "spelling": "spelling.yaml",
    "cancellation": "cancellation.yaml",
}
"""RuleSet section → file name. ``spelling.yaml`` and ``cancellation.yaml`` are optional."""


class RulesError(ValueError):
    """A rule file is missing, unreadable or invalid; the message names the bad entry."""


def _read(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise RulesError(f"{path.name}: cannot read rule file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise RulesError(f"{path.name}: not valid YAML: {exc}") from exc


def _describe(loc: Sequence[int | str], data: Mapping[str, Any]) -> str:
    """Render an error location, naming dictionary entries by code and cues by phrase."""
    parts: list[str] = []
    node: Any = data
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
            name = None
            if isinstance(node, dict):
                name = node.get("code") or node.get("phrase")
            elif isinstance(node, str):
                name = node
            parts.append(f"[{step}]" + (f" ({name})" if name else ""))
            continue
        if isinstance(node, dict):
            node = node.get(step)
        parts.append(f".{step}" if parts else str(step))
    return "".join(parts)


def load_rules(directory: Path | None = None) -> RuleSet:
    """Load and validate the qualification rules (procedure 4.6, 4.7, 4.9, 4.13, 5.1.2, 5.1.4).

    Reads the request dictionary, the sensitive-mail lexicon, urgency,
    complaint, perimeter and escalation cues from ``directory`` (the bundled
    ``services/router/rules/`` by default) and returns the frozen
    :class:`RuleSet`. Raises :class:`RulesError` naming the file and entry at
    fault, e.g. ``dictionary.yaml: types[13] (FUITE).service: unknown service
    queue 'field'``.
    """
    base = RULES_DIRECTORY if directory is None else directory
    sections: dict[str, Any] = {}
    for section, filename in RULE_FILES.items():
        path = base / filename
        if section in {"spelling", "cancellation"} and not path.exists():
            continue
        content = _read(path)
        if not isinstance(content, dict):
            raise RulesError(f"{filename}: expected a mapping at the top level")
        sections[section] = content.get("misspellings", {}) if section == "spelling" else content
    try:
        return RuleSet.model_validate(sections)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            loc = error["loc"]
            section = str(loc[0]) if loc else ""
            filename = RULE_FILES.get(section, "rules")
            where = _describe(loc[1:], sections.get(section, {})) if len(loc) > 1 else "(top level)"
            messages.append(f"{filename}: {where}: {error['msg']}")
        raise RulesError("invalid rules:\n  " + "\n  ".join(messages)) from exc
