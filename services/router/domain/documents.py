"""The customer's words tokenised once, indexed by word, with memoised polarities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.router.domain.speller import Speller
from services.router.domain.text import (
    Polarity,
    Token,
    WordForms,
    conditional_sentences,
    polarity_of,
    tokenize,
)

__all__ = ["Document"]


@dataclass(frozen=True, slots=True)
class Document:
    """The customer's words, tokenised once and shared by every lexicon."""

    text: str
    tokens: tuple[Token, ...]
    positions: Mapping[str, tuple[int, ...]]
    conditional: frozenset[int] = frozenset()
    _polarities: dict[tuple[int, int], Polarity] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(
        cls,
        text: str,
        spelling: Mapping[str, str] | None = None,
        speller: Speller | None = None,
        *,
        forms: WordForms | None = None,
    ) -> Document:
        """Tokenise ``text`` (already stripped of quoted replies) and index its words.

        ``forms`` replaces ``spelling`` and ``speller`` with a memo of both,
        built once per rule set (``CompiledRules.forms``).
        """
        if forms is None:
            forms = WordForms(spelling, None if speller is None else speller.correct)
        tokens = tokenize(text, forms=forms)
        positions: dict[str, list[int]] = {}
        for index, token in enumerate(tokens):
            found = positions.get(token.word)
            if found is None:
                positions[token.word] = [index]
            else:
                found.append(index)
        return cls(
            text,
            tokens,
            {w: tuple(p) for w, p in positions.items()},
            conditional_sentences(tokens),
        )

    def polarity(self, start: int, end: int) -> Polarity:
        """Polarity of the tokens ``start`` to ``end`` (memoised: lexicons share spans)."""
        key = (start, end)
        found = self._polarities.get(key)
        if found is None:
            found = polarity_of(self.tokens, start, end, self.conditional)
            self._polarities[key] = found
        return found

    def quote(self, start: int, end: int) -> str:
        """The customer's original words for tokens ``start`` to ``end`` (exclusive)."""
        return " ".join(self.text[self.tokens[start].start : self.tokens[end - 1].end].split())
