"""Cue phrases compiled against normalised French text, with the polarity of each match.

A cue phrase is written the way operations staff think of it (``"mise en
demeure"``, ``"contest*"``, ``"fuite .. compteur"``) and compiled once:
``*`` ends a prefix (``contest*`` matches conteste, contestation, contester),
``..`` allows up to three words in between, inside one clause. The text and the
cues go through the same normaliser (:mod:`services.router.domain.text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from services.router.domain.speller import Speller
from services.router.domain.text import (
    NEGATION_WORDS,
    Polarity,
    Token,
    WordForms,
    conditional_sentences,
    fold,
    polarity_of,
    tokenize,
)

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

GAP = 3
"""How many words ``..`` may skip in a cue phrase."""

PREFIX_MIN = 3
"""The shortest prefix a ``*`` cue may have."""

Element = tuple[Literal["word", "prefix", "gap"], str]
RawSpans = tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]
"""Raw (start, end, number) spans of a lexicon's cues and of its exclusions."""


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


class _Index:
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
    def of(cls, phrases: Iterable[tuple[Element, ...]]) -> _Index:
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


@dataclass(frozen=True, slots=True)
class CompiledLexicon:
    """A lexicon compiled for matching: cues, masking phrases, threshold and polarity policy."""

    name: str
    cues: tuple[CompiledCue, ...]
    exclude: tuple[tuple[Element, ...], ...] = ()
    threshold: float = 2
    count_hypothetical: bool = False
    count_risk: bool = True
    _cue_index: _Index = field(init=False, repr=False, compare=False)
    _exclude_index: _Index = field(init=False, repr=False, compare=False)

    _nothing: LexiconHit = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cue_index", _Index.of(c.elements for c in self.cues))
        object.__setattr__(self, "_exclude_index", _Index.of(self.exclude))
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
        self._index = _Index.of(self._phrases)

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
