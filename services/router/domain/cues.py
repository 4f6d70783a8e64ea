"""Cue phrases as operations staff write them, compiled into word / prefix / gap elements.

A cue phrase is written the way operations staff think of it (``"mise en
demeure"``, ``"contest*"``, ``"fuite .. compteur"``) and compiled once:
``*`` ends a prefix (``contest*`` matches conteste, contestation, contester),
``..`` allows up to three words in between, inside one clause. The text and the
cues go through the same normaliser (:mod:`services.router.domain.text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from services.router.domain.text import fold, tokenize

__all__ = ["GAP", "PREFIX_MIN", "CompiledCue", "Element", "compile_phrase"]

GAP = 3
"""How many words ``..`` may skip in a cue phrase."""

PREFIX_MIN = 3
"""The shortest prefix a ``*`` cue may have."""

Element = tuple[Literal["word", "prefix", "gap"], str]


def compile_phrase(phrase: str) -> tuple[Element, ...]:
    """Compile a cue phrase into word / prefix / gap elements, or raise ``ValueError``.

    The phrase syntax is the one of the rule files (procedure 4.6: the request
    dictionary and the lexicons are data); an invalid phrase is reported with
    the phrase itself so the loader can name the bad entry.
    """
    elements: list[Element] = []
    # "pas d' eau" and "pas d'eau" are the same phrase: glue elisions to their word
    for raw in re.sub(r"'\s+", "'", phrase).split():
        if raw == "..":
            if not elements or elements[-1][0] == "gap":
                raise ValueError(f"cue {phrase!r}: '..' must stand between two words")
            elements.append(("gap", ""))
            continue
        prefix = raw.endswith("*")
        word = raw[:-1] if prefix else raw
        parts = tokenize(word)
        if not parts:
            raise ValueError(f"cue {phrase!r}: {raw!r} has no letters or digits")
        elements.extend(("word", t.word) for t in parts[:-1])
        last = parts[-1]
        if prefix:
            # a prefix is folded but not singularised: "degat*" must keep all its letters
            stem = fold(word[last.start : last.end])
            if len(stem) < PREFIX_MIN:
                raise ValueError(f"cue {phrase!r}: prefix {raw!r} is shorter than {PREFIX_MIN}")
            elements.append(("prefix", stem))
        else:
            elements.append(("word", last.word))
    if not elements or elements[-1][0] == "gap":
        raise ValueError(f"cue {phrase!r}: must not be empty or end with '..'")
    return tuple(elements)


@dataclass(frozen=True, slots=True)
class CompiledCue:
    """One cue of a lexicon, ready to match: its phrase as written, elements, weight, flags."""

    phrase: str
    elements: tuple[Element, ...]
    weight: int
    negatable: bool = True
    kind: Literal["demande", "reclamation"] | None = None
