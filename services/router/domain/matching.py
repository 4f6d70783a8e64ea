"""Lexicons matched against a document: cue matches with their polarity, scores, one-pass scan.

A lexicon's compiled cues (:mod:`.cues`) are found in the customer's words
(:mod:`.documents`) through a phrase index (:mod:`.phrase_index`); each match
carries the polarity of its words, and the lexicon's policy says which count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from services.router.domain.cues import CompiledCue, Element, compile_phrase
from services.router.domain.documents import Document
from services.router.domain.phrase_index import PhraseIndex
from services.router.domain.speller import Speller
from services.router.domain.text import Polarity, fold

__all__ = [
    "CompiledCue",
    "CompiledLexicon",
    "CueMatch",
    "Document",
    "LexiconHit",
    "Scanner",
    "Speller",
    "compile_phrase",
    "vocabulary_of",
]

RawSpans = tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]
"""Raw (start, end, number) spans of a lexicon's cues and of its exclusions."""


class CueMatch(NamedTuple):
    """A cue found in the customer's words, where, how it is asserted, and the words quoted.

    Matches and hits are immutable named tuples rather than frozen dataclasses:
    every contact makes dozens of them, and a tuple is several times cheaper to build.
    """

    cue: CompiledCue
    start: int
    end: int
    polarity: Polarity
    quote: str


class LexiconHit(NamedTuple):
    """What one lexicon found in a document: the counted matches, the ignored ones, the score."""

    name: str
    score: float
    counted: tuple[CueMatch, ...]
    ignored: tuple[CueMatch, ...]
    threshold: float

    @property
    def fired(self) -> bool:
        """True when the score reaches the lexicon's threshold."""
        return self.score >= self.threshold

    @property
    def first(self) -> int:
        """Token index of the first counted match (for ordering mixed requests)."""
        if not self.counted:
            return 1_000_000
        return min(m.start for m in self.counted)

    def quotes(self, limit: int = 4) -> str:
        """The distinct counted cues, quoted in the customer's words, for a reason."""
        seen: dict[str, str] = {}  # folded quote -> first spelling met
        for match in sorted(self.counted, key=lambda m: (-m.cue.weight, m.start)):
            seen.setdefault(fold(match.quote), f"« {match.quote} »")
        return ", ".join(list(seen.values())[:limit])


@dataclass(frozen=True, slots=True)
class CompiledLexicon:
    """A lexicon compiled for matching: cues, masking phrases, threshold and polarity policy."""

    name: str
    cues: tuple[CompiledCue, ...]
    exclude: tuple[tuple[Element, ...], ...] = ()
    threshold: float = 2
    count_hypothetical: bool = False
    count_risk: bool = True
    _cue_index: PhraseIndex = field(init=False, repr=False, compare=False)
    _exclude_index: PhraseIndex = field(init=False, repr=False, compare=False)

    _nothing: LexiconHit = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cue_index", PhraseIndex.of(c.elements for c in self.cues))
        object.__setattr__(self, "_exclude_index", PhraseIndex.of(self.exclude))
        object.__setattr__(self, "_nothing", LexiconHit(self.name, 0.0, (), (), self.threshold))

    def find(self, doc: Document, spans: RawSpans | None = None) -> list[CueMatch]:
        """Every non-overlapping match of this lexicon's cues, longest first, with its polarity.

        ``spans`` are the raw (start, end, number) spans of the cues and of the
        exclusions when a :class:`Scanner` already found them for every lexicon.
        """
        if spans is None:
            spans = (
                self._cue_index.spans(doc, [c.elements for c in self.cues]),
                self._exclude_index.spans(doc, self.exclude),
            )
        cue_spans, exclude_spans = spans
        masked = {index for start, end, _ in exclude_spans for index in range(start, end)}
        found = [
            (start, end, self.cues[number])
            for start, end, number in cue_spans
            if masked.isdisjoint(range(start, end))
        ]
        found.sort(key=lambda f: (-(f[1] - f[0]), -f[2].weight, f[0]))
        taken: set[int] = set()
        matches: list[CueMatch] = []
        for start, end, cue in found:
            if not taken.isdisjoint(range(start, end)):
                continue
            taken.update(range(start, end))
            matches.append(
                CueMatch(cue, start, end, doc.polarity(start, end), doc.quote(start, end))
            )
        matches.sort(key=lambda m: m.start)
        return matches

    def counts(self, match: CueMatch) -> bool:
        """Whether a match counts under this lexicon's polarity policy (5.1.4, 4.7)."""
        polarity = match.polarity
        if polarity == "negated":
            return not match.cue.negatable
        if polarity == "hypothetical":
            return self.count_hypothetical
        if polarity == "risk":
            return self.count_risk
        return True

    def hit(self, doc: Document, spans: RawSpans | None = None) -> LexiconHit:
        """Score ``doc``: each distinct counted cue adds its weight, a repeat ½ (twice at most)."""
        if spans is not None and not spans[0]:
            return self._nothing  # no cue in the text: nothing to mask, count or quote
        counted: list[CueMatch] = []
        ignored: list[CueMatch] = []
        for match in self.find(doc, spans):
            (counted if self.counts(match) else ignored).append(match)
        occurrences: dict[str, int] = {}
        score = 0.0
        for match in counted:
            seen = occurrences.get(match.cue.phrase, 0)
            score += match.cue.weight if seen == 0 else (0.5 if seen <= 2 else 0)
            occurrences[match.cue.phrase] = seen + 1
        return LexiconHit(self.name, score, tuple(counted), tuple(ignored), self.threshold)


class Scanner:
    """All lexicons of a rule set indexed together: one pass over a document finds every cue.

    Equivalent to calling :meth:`CompiledLexicon.hit` on each lexicon, in a
    fraction of the time (the router qualifies every incoming contact).
    """

    def __init__(self, lexicons: Sequence[CompiledLexicon]) -> None:
        self.lexicons = tuple(lexicons)
        self._phrases: list[tuple[Element, ...]] = []
        self._owners: list[tuple[int, bool, int]] = []  # lexicon, is exclusion, number
        for position, lexicon in enumerate(self.lexicons):
            for number, cue in enumerate(lexicon.cues):
                self._phrases.append(cue.elements)
                self._owners.append((position, False, number))
            for number, elements in enumerate(lexicon.exclude):
                self._phrases.append(elements)
                self._owners.append((position, True, number))
        self._index = PhraseIndex.of(self._phrases)

    def scan(self, doc: Document) -> dict[str, LexiconHit]:
        """Every lexicon's hit on ``doc``, by lexicon name."""
        raw: list[RawSpans] = [([], []) for _ in self.lexicons]
        for start, end, number in self._index.spans(doc, self._phrases):
            position, is_exclusion, own = self._owners[number]
            raw[position][1 if is_exclusion else 0].append((start, end, own))
        return {
            lexicon.name: lexicon.hit(doc, spans) if spans[0] else lexicon._nothing
            for lexicon, spans in zip(self.lexicons, raw, strict=True)
        }


def vocabulary_of(lexicons: Iterable[CompiledLexicon]) -> frozenset[str]:
    """Every exact cue word of ``lexicons``: what the speller may correct towards."""
    return frozenset(
        value
        for lexicon in lexicons
        for cue in lexicon.cues
        for kind, value in cue.elements
        if kind == "word" and len(value) > 3
    )
