"""French text handling for qualification: folding, tokens, quoted replies, negation.

Everything here is pure and deterministic. The same normaliser is applied to
the customer's text and to the cue phrases of the rule files, so a cue written
``"dégât des eaux"`` also matches ``"DEGATS DES EAUX"``: plurals, elisions,
accents and common misspellings never need listing twice. Folding lives in
:mod:`~services.router.domain.folding` and quoted replies in
:mod:`~services.router.domain.quotes`; both are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal, NamedTuple

from services.router.domain.folding import fold, fold_with_offsets
from services.router.domain.quotes import strip_quoted
from services.router.domain.spelling import MISSPELLINGS

__all__ = [
    "NEGATION_WORDS",
    "Polarity",
    "Token",
    "WordForms",
    "conditional_sentences",
    "fold",
    "fold_with_offsets",
    "normalise_word",
    "polarity_of",
    "strip_quoted",
    "tokenize",
]

Polarity = Literal["affirmed", "conditional", "risk", "hypothetical", "negated"]
"""How a cue is asserted by the customer's sentence.

``affirmed``: stated; ``conditional``: inside a sentence carrying a condition
("sinon je porterai plainte", "je vais porter plainte si…"), still a threat;
``risk``: announced as a risk ("risque d'inondation"); ``hypothetical``: a
general case or a question ("en cas de fuite, que faire ?"); ``negated``:
denied ("il n'y a pas de fuite", "aucune fuite", "je ne souhaite pas porter plainte").
"""

# -- tokens -------------------------------------------------------------------------------

_ELISIONS: Mapping[str, str] = {
    "l": "le",
    "d": "de",
    "n": "ne",
    "j": "je",
    "s": "se",
    "c": "ce",
    "m": "me",
    "t": "te",
    "qu": "que",
    "jusqu": "jusque",
    "lorsqu": "lorsque",
    "puisqu": "puisque",
    "quoiqu": "quoique",
}

# Words ending in -s / -x that are not plurals; left as they are.
_INVARIABLE = frozenset((
    "pas", "plus", "mais", "sans", "sous", "dans", "vous", "nous", "tous", "tres", "apres",
    "depuis", "jamais", "toujours", "alors", "moins", "temps", "fois", "mois", "corps", "avis",
    "prix", "puis", "lors", "ailleurs", "dessus", "dessous", "parfois", "gens", "frais",
    "francais", "anglais", "relais", "repas", "bras", "fils", "pis", "divers", "propos",
    "concours", "dos", "gaz", "deux", "mieux", "vieux", "ceux", "yeux", "choix", "voix", "faux",
    "doux", "heureux", "malheureux", "paris", "tandis", "secours", "recours", "cours", "hors",
    "vers",
))  # fmt: skip

_TOKEN = re.compile(
    r"(?P<word>[a-z0-9]+(?:'(?=[a-z0-9]))?)"
    r"|(?P<sentence>[.!?;]|\n\s*\n)"
    r"|[:,()\[\]\"«»|]|\s-\s"
)
"""One pass over folded text: a word, a sentence break, or another clause break.

The three never share a character, so one scan finds what separate scans
for words and for breaks would find, in text order.
"""
_CLAUSE_WORDS = frozenset({"mais", "cependant", "pourtant", "toutefois", "neanmoins"})
_IL = frozenset({"il", "ils"})


def _singular(word: str) -> str:
    if word in _INVARIABLE or len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("eaux") or word.endswith("yaux"):
        return word[:-1]
    if word.endswith("aux"):
        return word[:-3] + "al"
    if word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if word.endswith("ee") and len(word) > 4:
        word = word[:-1]
    return word


def normalise_word(word: str, spelling: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Normalise one folded word into the tokens it stands for.

    Applies the misspelling table (``"jai"`` → ``je ai``, ``"fuitte"`` →
    ``fuite``), expands elisions (``l'`` → ``le``, ``qu'`` → ``que``) and
    reduces plurals and feminine participles (``dégâts`` → ``degat``,
    ``inondée`` → ``inonde``). Cue phrases and customer text go through this
    same function, so both sides always agree.
    """
    word = word.lower()
    if word.endswith("'"):
        stem = word[:-1]
        return (_ELISIONS.get(stem, stem),)
    table = MISSPELLINGS if spelling is None else spelling
    replacement = table.get(word)
    if replacement is not None:
        return tuple(_singular(part) for part in replacement.split())
    return (_singular(word),)


class Token(NamedTuple):
    """One normalised word with where it stands: clause, sentence and span in the source.

    An immutable named tuple: a text of a few hundred words makes as many
    tokens, and a tuple is several times cheaper to build than a frozen
    dataclass.
    """

    word: str
    clause: int
    sentence: int
    start: int
    end: int


_Form = tuple[str, str, bool, bool]
"""One token a folded word stands for: (normalised, corrected, clause word, "il"/"ils")."""


class WordForms:
    """What each folded word stands for, memoised: :func:`normalise_word`, then a corrector.

    The corrector (a speller) only sees the normalised word; the clause and
    "s'il" rules of :func:`tokenize` see the word before correction. Customer
    mail reuses a small vocabulary, so nearly every word is found in the memo.
    The memo is bounded; it is a cache, not state.
    """

    __slots__ = ("_correct", "_spelling", "memo")

    def __init__(
        self,
        spelling: Mapping[str, str] | None = None,
        correct: Callable[[str], str] | None = None,
    ) -> None:
        self._spelling = spelling
        self._correct = correct
        self.memo: dict[str, tuple[_Form, ...]] = {}
        """Folded word → its forms; read directly by :func:`tokenize` (the hot loop)."""

    def __call__(self, word: str) -> tuple[_Form, ...]:
        """The tokens ``word`` (folded, as the tokenizer finds it) stands for."""
        forms = self.memo.get(word)
        if forms is None:
            correct = self._correct
            forms = tuple(
                (
                    part,
                    part if correct is None else correct(part),
                    part in _CLAUSE_WORDS,
                    part in _IL,
                )
                for part in normalise_word(word, self._spelling)
            )
            if len(self.memo) >= 100_000:
                self.memo.clear()
            self.memo[word] = forms
        return forms


def tokenize(
    text: str, spelling: Mapping[str, str] | None = None, *, forms: WordForms | None = None
) -> tuple[Token, ...]:
    """Split French text into normalised tokens carrying clause and sentence numbers.

    Clauses end at punctuation, blank lines and adversative conjunctions
    ("mais", "cependant"); sentences end at ``. ! ? ;`` and blank lines. A
    negation never reaches across a clause and a cue phrase never spans two.
    ``start``/``end`` index ``text`` itself, for quoting the customer's words.
    ``forms``, when given, replaces ``spelling``: a memo that may also correct
    typos (each token then holds the corrected word).
    """
    if forms is None:
        forms = WordForms(spelling)
    folded, offsets = fold_with_offsets(text)
    memo = forms.memo
    new = tuple.__new__  # Token(...) without the Python-level __new__ of a named tuple
    tokens: list[Token] = []
    clause = sentence = 0
    previous_word = ""  # the word of tokens[-1] before correction
    for match in _TOKEN.finditer(folded):
        kind = match.lastindex  # 1: a word, 2: a sentence break, None: a clause break
        if kind != 1:
            clause += 1
            if kind == 2:
                sentence += 1
            continue
        first, last = match.span()
        start = offsets[first]
        end = offsets[last - 1] + 1
        found = match.group()
        parts = memo.get(found)
        if parts is None:
            parts = forms(found)
        for part, word, clause_word, il in parts:
            if clause_word:
                clause += 1
            if il and previous_word == "se" and tokens[-1].end == start:
                # "s'il" is "si il", not "se il": keeps "s'il ne répond pas" conditional
                previous = tokens[-1]
                tokens[-1] = new(
                    Token, ("si", previous.clause, previous.sentence, previous.start, start)
                )
            tokens.append(new(Token, (word, clause, sentence, start, end)))
            previous_word = part
    return tuple(tokens)


# -- negation, hypotheses, conditions (procedure 5.1.4: "menaçant de porter plainte") -----


def _words(text: str) -> frozenset[str]:
    return frozenset(part for word in text.split() for part in normalise_word(word))


def _phrases(*texts: str) -> re.Pattern[str]:
    """Normalised phrases, space-padded, as one pattern to search a space-joined word list."""
    return re.compile(
        "|".join(
            re.escape(
                f" {' '.join(part for word in text.split() for part in normalise_word(word))} "
            )
            for text in texts
        )
    )


_NEGATORS = _words("pas jamais aucun aucune aucuns aucunes nul nulle sans ni rien guere")
_FILLERS = _words(
    """de du des le la les un une mon ma me mes ton ta notre nos votre vos son sa ses leur ce
    cet cette ces y en eu avoir ete etre encore vraiment forcement tout risque danger souhaite
    souhaitons souhaiterai souhaiterais veux voulons voudrais voudrions vais allons compte
    comptons pense intention envie besoin question porter deposer faire aller engager entamer
    intenter saisir constate constater trouve trouver vu voir detecte remarque observe note
    signaler"""
)
_LITOTES = ("hesit", "exclu", "manqu", "empech", "oubli")
_OBJECT_PRONOUNS = _words("y en le la les lui leur me te se nous vous")
_AUXILIARIES = _words("est a sont ont etait etaient ete fut sera seront")
_NEGATIVE_SUBJECTS = _words("rien personne aucun aucune nul nulle")
_HYPOTHESES = _phrases(
    "en cas de",
    "en cas",
    "au cas ou",
    "si jamais",
    "dans l' hypothese",
    "le cas echeant",
    "que faire si",
    "comment faire si",
    "comment savoir si",
    "que dois je faire",
    "que faut il faire",
    "eventuel",
    "eventuelle",
    "eventuellement",
)
_RISKS = _phrases("risque", "risquer", "risquent", "menace de", "pourrait", "pourraient")
_CONDITIONS = _words("si sinon faute defaut")
_IF = _words("si")
_PLUS = _words("plus")
_NE = _words("ne")
NEGATION_WORDS: frozenset[str] = _NEGATORS | _PLUS
"""Words a ``..`` gap of a cue phrase may not skip: "déposer .. plainte" never spans "pas"."""


def _contains(words: list[str], phrases: re.Pattern[str]) -> bool:
    return phrases.search(f" {' '.join(words)} ") is not None


def _negated(tokens: tuple[Token, ...], start: int, end: int) -> bool:
    clause = tokens[start].clause
    # (a) "pas de fuite", "aucune fuite", "ne souhaite pas porter plainte": a negator
    # before the cue with only determiners / intention verbs in between.
    index = start - 1
    while index >= 0 and start - index <= 6 and tokens[index].clause == clause:
        word = tokens[index].word
        if word in _NEGATORS or (word in _PLUS and _plus_negates(tokens, index)):
            before = [t.word for t in tokens[max(0, index - 3) : index] if t.clause == clause]
            return not any(w.startswith(_LITOTES) for w in before)
        if word not in _FILLERS:
            break
        index -= 1
    # (b) "je ne conteste pas", "il n'en porterait jamais plainte": ne + cue + negator;
    # (c) "rien n'est inondé", "aucune fuite n'a été vue": negative subject + ne + cue.
    index = start - 1
    while (
        index >= 0
        and tokens[index].clause == clause
        and (tokens[index].word in _OBJECT_PRONOUNS or tokens[index].word in _AUXILIARIES)
    ):
        index -= 1
    if index >= 0 and tokens[index].clause == clause and tokens[index].word in _NE:
        after = [t.word for t in tokens[end : end + 2] if t.clause == clause]
        if any(w in _NEGATORS or w in _PLUS for w in after):
            return True
        return (
            index > 0
            and tokens[index - 1].clause == clause
            and (tokens[index - 1].word in _NEGATIVE_SUBJECTS)
        )
    return False


def _plus_negates(tokens: tuple[Token, ...], index: int) -> bool:
    """Whether "plus" negates: after "ne" ("je n'ai plus de fuite") or opening a clause."""
    clause = tokens[index].clause
    if index == 0 or tokens[index - 1].clause != clause:
        return True
    window = tokens[max(0, index - 4) : index]
    return any(t.word in _NE and t.clause == clause for t in window)


def conditional_sentences(tokens: tuple[Token, ...]) -> frozenset[int]:
    """Numbers of the sentences holding a condition ("si", "sinon", "à défaut", "faute de")."""
    return frozenset(t.sentence for t in tokens if t.word in _CONDITIONS)


def polarity_of(
    tokens: tuple[Token, ...],
    start: int,
    end: int,
    conditions: frozenset[int] | None = None,
) -> Polarity:
    """Tell whether the cue at ``tokens[start:end]`` is negated, hypothetical, risk or conditional.

    Implements the reading a careful agent applies to 5.1.4 and 4.7: "il n'y a
    pas de fuite" and "je ne souhaite pas porter plainte" are negated, but
    "je n'hésiterai pas à porter plainte" is not; "en cas de fuite, que faire ?"
    is a general question; "risque d'inondation" announces a risk; "sinon je
    porterai plainte" and "je vais porter plainte si…" are conditional threats,
    which still count as threats. ``conditions``, the result of
    :func:`conditional_sentences` for ``tokens``, saves rescanning the text.
    """
    if _negated(tokens, start, end):
        return "negated"
    clause = tokens[start].clause
    sentence = tokens[start].sentence
    before = [t.word for t in tokens[max(0, start - 8) : start] if t.clause == clause]
    if _contains(before, _HYPOTHESES) or (bool(before) and before[-1] in _IF):
        return "hypothetical"
    if _contains(before, _RISKS):
        return "risk"
    if conditions is None:
        conditions = conditional_sentences(tokens)
    if sentence in conditions:
        return "conditional"
    return "affirmed"
