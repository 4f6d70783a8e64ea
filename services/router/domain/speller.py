"""Typos of cue words corrected before matching ("canalisaiton" → "canalisation")."""

from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz.distance import OSA
from rapidfuzz.process import extractOne

__all__ = ["Speller"]


def _inflection(word: str, other: str) -> bool:
    """True when two words differ only in their last two letters (an ending, not a typo)."""
    common = 0
    for a, b in zip(word, other, strict=False):
        if a != b:
            break
        common += 1
    return common >= max(len(word), len(other)) - 2


@dataclass(slots=True)
class Speller:
    """Corrects unknown long words one typo away from a cue word (rapidfuzz OSA distance 1).

    Only words of at least ``min_length`` letters that are not cue words
    themselves are corrected, so "compter" is never read as "compteur", and a
    difference in the last two letters is taken for an inflection, not a typo.
    The memo is bounded; it is a cache, not state.
    """

    vocabulary: frozenset[str]
    min_length: int = 8
    _choices: tuple[str, ...] = field(default=(), init=False)
    _memo: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._choices = tuple(sorted(w for w in self.vocabulary if len(w) >= self.min_length - 1))

    def correct(self, word: str) -> str:
        """Return the cue word ``word`` is a typo of, or ``word`` itself."""
        if len(word) < self.min_length or word in self.vocabulary or word.isdigit():
            return word
        cached = self._memo.get(word)
        if cached is not None:
            return cached
        found = extractOne(word, self._choices, scorer=OSA.distance, score_cutoff=1)
        corrected = word
        # a difference in the last two letters is an inflection ("coordonner" is no
        # typo of "coordonnees"), not a typo: keep the word
        if found is not None and not _inflection(word, found[0]):
            corrected = found[0]
        if len(self._memo) > 50_000:
            self._memo.clear()
        self._memo[word] = corrected
        return corrected
