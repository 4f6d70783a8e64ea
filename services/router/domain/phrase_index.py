"""Where cue phrases match in a document: phrases indexed by their first word or prefix.

The index finds the raw (start, end, phrase number) spans; which of them
count, and how much, is the lexicon's business (:mod:`.matching`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.router.domain.cues import GAP, PREFIX_MIN, Element
from services.router.domain.documents import Document
from services.router.domain.text import NEGATION_WORDS

__all__ = ["PhraseIndex"]


def _element_matches(element: Element, word: str) -> bool:
    kind, value = element
    return word == value if kind == "word" else word.startswith(value)


def _match_from(doc: Document, elements: tuple[Element, ...], start: int) -> int | None:
    """Return the end index of ``elements`` matched from token ``start``, or None."""
    tokens = doc.tokens
    clause = tokens[start].clause
    index = start
    position = 0
    while position < len(elements):
        element = elements[position]
        if element[0] == "gap":
            following = elements[position + 1]
            for skip in range(GAP + 1):
                probe = index + skip
                if probe >= len(tokens) or tokens[probe].clause != clause:
                    return None
                if skip and tokens[probe - 1].word in NEGATION_WORDS:
                    return None
                if _element_matches(following, tokens[probe].word):
                    index = probe + 1
                    break
            else:
                return None
            position += 2
            continue
        if index >= len(tokens) or tokens[index].clause != clause:
            return None
        if not _element_matches(element, tokens[index].word):
            return None
        index += 1
        position += 1
    return index


_Longer = tuple[int, frozenset[str]]
"""A phrase of several elements: its number, and the words after its first it needs."""


_Candidates = tuple[tuple[int, ...], tuple[_Longer, ...]]
_NO_CANDIDATES: _Candidates = ((), ())


class PhraseIndex:
    """Phrases indexed by their first word, or by the first three letters of a first prefix.

    A phrase of one word or one prefix matches wherever its first element does,
    so it is kept apart from the longer phrases and never walked token by token.
    A longer phrase is only walked where its first element stands, and only in
    a text that holds every other word it needs ("le .. maire" is never tried
    in a text without "maire"). What each word may start is memoised (bounded):
    customer mail reuses a small vocabulary.
    """

    __slots__ = ("_memo", "_prefixes", "_words")

    def __init__(self, phrases: Iterable[tuple[Element, ...]]) -> None:
        words: dict[str, tuple[list[int], list[_Longer]]] = {}
        prefixes: dict[str, list[tuple[str, int, frozenset[str] | None]]] = {}
        for number, elements in enumerate(phrases):
            kind, value = elements[0]
            needs = None
            if len(elements) > 1:
                needs = frozenset(v for k, v in elements[1:] if k == "word")
            if kind == "word":
                singles, longer = words.setdefault(value, ([], []))
                if needs is None:
                    singles.append(number)
                else:
                    longer.append((number, needs))
            else:
                prefixes.setdefault(value[:PREFIX_MIN], []).append((value, number, needs))
        self._words = {w: (tuple(one), tuple(more)) for w, (one, more) in words.items()}
        self._prefixes = {p: tuple(n) for p, n in prefixes.items()}
        self._memo: dict[str, _Candidates] = {}

    @classmethod
    def of(cls, phrases: Iterable[tuple[Element, ...]]) -> PhraseIndex:
        return cls(phrases)

    def _candidates(self, word: str) -> _Candidates:
        """Phrases that may start at ``word``: those of one element, and the longer ones."""
        found = self._memo.get(word)
        if found is not None:
            return found
        singles, longer = self._words.get(word, _NO_CANDIDATES)
        prefixed = [
            (n, needs)
            for p, n, needs in self._prefixes.get(word[:PREFIX_MIN], ())
            if word.startswith(p)
        ]
        if prefixed:
            singles = (*singles, *(n for n, needs in prefixed if needs is None))
            longer = (*longer, *((n, needs) for n, needs in prefixed if needs is not None))
        found = (singles, longer)
        if len(self._memo) >= 100_000:
            self._memo.clear()
        self._memo[word] = found
        return found

    def spans(
        self, doc: Document, phrases: Sequence[tuple[Element, ...]]
    ) -> list[tuple[int, int, int]]:
        """(start, end, phrase number) of every match of the indexed phrases in ``doc``."""
        found: list[tuple[int, int, int]] = []
        present = doc.positions
        words = present.keys()
        memo = self._memo
        for word, positions in present.items():
            singles, longer = memo.get(word) or self._candidates(word)
            for number in singles:
                if len(positions) == 1:
                    found.append((positions[0], positions[0] + 1, number))
                else:
                    found.extend([(start, start + 1, number) for start in positions])
            for number, needs in longer:
                if not words >= needs:
                    continue
                elements = phrases[number]
                for start in positions:
                    end = _match_from(doc, elements, start)
                    if end is not None:
                        found.append((start, end, number))
        return found
