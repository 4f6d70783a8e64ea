"""Cue phrases, lexicon scoring and the one-pass scanner (procedure 4.6, 5.1.4 rules as data)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.domain.cues import compile_phrase
from services.router.domain.documents import Document
from services.router.domain.matching import Scanner
from services.router.domain.rules import Cue, Lexicon, RuleSet
from services.router.domain.speller import Speller
from services.router.rules_loader import load_rules


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def _lexicon(*cues: str | dict[str, object], **options: object) -> Lexicon:
    return Lexicon.model_validate({"cues": list(cues), **options})


@pytest.mark.parametrize(
    ("phrase", "elements"),
    [
        pytest.param("mise en demeure", (("word", "mise"), ("word", "en"), ("word", "demeure"))),
        pytest.param("contest*", (("prefix", "contest"),), id="prefix"),
        pytest.param("Dégât*", (("prefix", "degat"),), id="prefix-folded-not-singularised"),
        pytest.param("dégâts des eaux", (("word", "degat"), ("word", "des"), ("word", "eau"))),
        pytest.param(
            "pas d' eau", (("word", "pas"), ("word", "de"), ("word", "eau")), id="elision"
        ),
        pytest.param(
            "fuite .. compteur",
            (("word", "fuite"), ("gap", ""), ("word", "compteur")),
            id="gap",
        ),
    ],
)
def test_compile_phrase(phrase: str, elements: tuple[tuple[str, str], ...]) -> None:
    assert compile_phrase(phrase) == elements


@pytest.mark.parametrize(
    "phrase",
    [
        pytest.param(".. fuite", id="leading-gap"),
        pytest.param("fuite ..", id="trailing-gap"),
        pytest.param("fuite .. .. compteur", id="double-gap"),
        pytest.param("!!!", id="no-letters"),
        pytest.param("ab*", id="prefix-too-short"),
        pytest.param("", id="empty"),
    ],
)
def test_compile_phrase_rejects(phrase: str) -> None:
    with pytest.raises(ValueError, match="cue"):
        compile_phrase(phrase)


@pytest.mark.parametrize(
    ("cue", "text", "found"),
    [
        pytest.param("fuite .. compteur", "une fuite au joint du compteur", True, id="gap-3"),
        pytest.param("fuite .. compteur", "fuite dans le jardin puis vers le compteur", False),
        pytest.param(
            "deposer .. plainte", "je ne veux pas deposer pas plainte", False, id="no-neg"
        ),
        pytest.param("fuite", "FUITES", True, id="plural-and-case"),
        pytest.param("contest*", "je conteste", True, id="prefix"),
        pytest.param("mise en demeure", "mise, en demeure", False, id="phrase-within-clause"),
        pytest.param("degat des eaux", "dégâts des eaux", True, id="accents"),
    ],
)
def test_cue_matching(cue: str, text: str, found: bool) -> None:
    lexicon = _lexicon(cue).compile("test")
    assert bool(lexicon.find(Document.parse(text))) is found


def test_exclusion_hides_overlapping_cues() -> None:
    lexicon = _lexicon("fuite", exclude=["fuite de donnees"]).compile("test")
    assert lexicon.find(Document.parse("une fuite de données personnelles")) == []
    assert len(lexicon.find(Document.parse("une fuite d'eau"))) == 1


def test_longest_cue_wins_within_a_lexicon() -> None:
    lexicon = _lexicon({"phrase": "plainte", "weight": 1}, "porter plainte").compile("test")
    hit = lexicon.hit(Document.parse("je vais porter plainte"))
    assert [m.cue.phrase for m in hit.counted] == ["porter plainte"]
    assert hit.score == 2
    assert hit.fired


def test_repeats_add_half_and_at_most_twice() -> None:
    lexicon = _lexicon({"phrase": "facture", "weight": 3}).compile("test")
    hit = lexicon.hit(Document.parse("facture, facture, facture, facture"))
    assert hit.score == 4.0


@pytest.mark.parametrize(
    ("options", "text", "counted"),
    [
        pytest.param({}, "il n'y a pas de fuite", False, id="negated-ignored"),
        pytest.param({"negatable": False}, "il n'y a pas de fuite", True, id="topic-word"),
        pytest.param({}, "en cas de fuite que faire", False, id="hypothetical-ignored"),
        pytest.param({"count_hypothetical": True}, "en cas de fuite", True, id="hypo-counted"),
        pytest.param({}, "risque de fuite", True, id="risk-counted"),
        pytest.param({"count_risk": False}, "risque de fuite", False, id="risk-ignored"),
        pytest.param({}, "sinon une fuite", True, id="conditional-counted"),
    ],
)
def test_polarity_policy(options: dict[str, object], text: str, counted: bool) -> None:
    lexicon = _lexicon("fuite", **options).compile("test")
    hit = lexicon.hit(Document.parse(text))
    assert bool(hit.counted) is counted
    assert bool(hit.ignored) is not counted


def test_hit_quotes_the_customer_words() -> None:
    lexicon = _lexicon("mise en demeure").compile("sensible/juridique")
    hit = lexicon.hit(Document.parse("Je vous MISE EN DEMEURE,\nsous huitaine"))
    assert hit.quotes() == "« MISE EN DEMEURE »"


@pytest.mark.parametrize(
    ("word", "corrected"),
    [
        pytest.param("canalisaiton", "canalisation", id="transposition"),
        pytest.param("assainisement", "assainissement", id="missing-letter"),
        pytest.param("compter", "compter", id="short-real-word-kept"),
        pytest.param("coordonner", "coordonner", id="inflection-kept"),
        pytest.param("canalisation", "canalisation", id="known-word"),
        pytest.param("123456789", "123456789", id="digits"),
    ],
)
def test_speller(word: str, corrected: str) -> None:
    speller = Speller(frozenset({"canalisation", "assainissement", "coordonne", "compteur"}))
    assert speller.correct(word) == corrected


def test_cue_accepts_a_bare_string() -> None:
    assert Cue.model_validate("avocat") == Cue(phrase="avocat")


_WORDS = st.sampled_from((
    "fuite", "facture", "pas", "de", "plainte", "je", "ne", "vais", "porter", "si", "sinon",
    "compteur", "inondé", "mairie", "eau", "contestation", "avocat", ",", ".", "le", "la", "en",
    "cas", "risque", "d'", "mise", "demeure", "s'il", "aucune", "dégâts",
))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_WORDS, max_size=40))
def test_scanner_finds_what_each_lexicon_finds(rules: RuleSet, words: list[str]) -> None:
    compiled = rules.compiled
    doc = Document.parse(" ".join(words), compiled.spelling, compiled.speller)
    scanned = compiled.scanner.scan(doc)
    for lexicon in compiled.scanner.lexicons:
        assert scanned[lexicon.name] == lexicon.hit(doc)


def test_scanner_names_are_unique(rules: RuleSet) -> None:
    scanner: Scanner = rules.compiled.scanner
    names = [lexicon.name for lexicon in scanner.lexicons]
    assert len(names) == len(set(names))


@settings(max_examples=100, deadline=None)
@given(st.lists(_WORDS, max_size=40))
def test_a_rule_set_reads_as_document_parse_does(rules: RuleSet, words: list[str]) -> None:
    compiled = rules.compiled
    text = " ".join(words)
    expected = Document.parse(text, compiled.spelling, compiled.speller)
    assert compiled.read(text) == expected
    assert compiled.read(text) == expected  # the word memo changes nothing


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param("le maire de la commune", ["le maire"], id="both-words"),
        pytest.param("le compteur fuit", [], id="second-word-missing"),
        pytest.param("le compteur du maire", [], id="not-adjacent"),
        pytest.param("une fuite au joint du compteur", ["fuite .. compteur"], id="gap"),
        pytest.param("compteur, fuite", [], id="gap-words-in-the-wrong-order"),
    ],
)
def test_longer_cues_need_all_their_words(text: str, found: list[str]) -> None:
    lexicon = _lexicon("le maire", "fuite .. compteur", "maire .. elu").compile("test")
    assert [m.cue.phrase for m in lexicon.find(Document.parse(text))] == found
