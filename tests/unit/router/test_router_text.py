"""French text handling of the router: folding, tokens, quoted replies, polarity (5.1.4, 5.1.5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.domain.text import (
    Polarity,
    WordForms,
    fold,
    fold_with_offsets,
    normalise_word,
    polarity_of,
    strip_quoted,
    tokenize,
)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        pytest.param("Dégât des EAUX", "degat des eaux", id="accents-and-case"),
        pytest.param("l’eau", "l'eau", id="typographic-apostrophe"),
        pytest.param("Œuf pourri", "oeuf pourri", id="ligature"),
        pytest.param("ÇA DÉBORDE", "ca deborde", id="capital-cedilla"),
        pytest.param("plain ascii", "plain ascii", id="ascii-fast-path"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("word", "tokens"),
    [
        pytest.param("l'", ("le",), id="elision-l"),
        pytest.param("qu'", ("que",), id="elision-qu"),
        pytest.param("jusqu'", ("jusque",), id="elision-jusqu"),
        pytest.param("fuites", ("fuite",), id="plural-s"),
        pytest.param("degats", ("degat",), id="plural-degats"),
        pytest.param("eaux", ("eau",), id="plural-eaux"),
        pytest.param("tuyaux", ("tuyau",), id="plural-yaux"),
        pytest.param("canaux", ("canal",), id="plural-aux"),
        pytest.param("inondee", ("inonde",), id="feminine-participle"),
        pytest.param("inondees", ("inonde",), id="feminine-plural-participle"),
        pytest.param("pas", ("pas",), id="invariable-pas"),
        pytest.param("avis", ("avis",), id="invariable-avis"),
        pytest.param("jai", ("je", "ai"), id="missing-apostrophe"),
        pytest.param("fuitte", ("fuite",), id="misspelling"),
        pytest.param("rdv", ("rendez", "vous"), id="abbreviation"),
    ],
)
def test_normalise_word(word: str, tokens: tuple[str, ...]) -> None:
    assert normalise_word(word) == tokens


def test_tokenize_expands_elisions_and_keeps_positions() -> None:
    text = "Il n'y a pas d'eau, c'est urgent."
    tokens = tokenize(text)
    words = [t.word for t in tokens]
    assert words == ["il", "ne", "y", "a", "pas", "de", "eau", "ce", "est", "urgent"]
    assert text[tokens[5].start : tokens[6].end] == "d'eau"


def test_tokenize_reads_s_il_as_si_il() -> None:
    assert [t.word for t in tokenize("S'il ne répond pas, il s'est trompé")][:2] == ["si", "il"]
    tokens = tokenize("S'il ne répond pas, je porterai plainte")
    assert polarity_of(tokens, len(tokens) - 1, len(tokens)) == "conditional"


def test_tokenize_clauses_and_sentences() -> None:
    tokens = tokenize("Pas de fuite, mais une odeur. Autre phrase")
    clauses = {t.word: t.clause for t in tokens}
    sentences = {t.word: t.sentence for t in tokens}
    assert clauses["fuite"] != clauses["odeur"]  # comma and "mais" both end a clause
    assert sentences["fuite"] == sentences["odeur"]
    assert sentences["phrase"] == sentences["odeur"] + 1


def test_tokenize_single_newline_does_not_break_a_clause() -> None:
    tokens = tokenize("une fuite d'eau\nse produit sur le trottoir")
    assert len({t.clause for t in tokens}) == 1


@pytest.mark.parametrize(
    ("text", "kept", "dropped"),
    [
        pytest.param(
            "Merci.\n> Vous pouvez saisir le médiateur.\n> Cordialement",
            "Merci.",
            "médiateur",
            id="angle-quoted-lines",
        ),
        pytest.param(
            "D'accord.\n\n-----Message d'origine-----\nDe : Service\nMise en demeure",
            "D'accord.",
            "Mise en demeure",
            id="message-d-origine",
        ),
        pytest.param(
            "Ok pour jeudi.\n\nDe : Service Client\nEnvoyé : mardi\nÀ : moi\nObjet : RE\nAvocat",
            "Ok pour jeudi.",
            "Avocat",
            id="outlook-header-block",
        ),
        pytest.param(
            "Je conteste.\n\nLe 12/03/2025 à 09:41, Service Client a écrit :\nNotre réponse",
            "Je conteste.",
            "Notre réponse",
            id="le-a-ecrit-top-posting",
        ),
        pytest.param(
            "Non.\nLe lun. 7 avr. 2025 à 14:03, Service Client <s@x.fr> a\nécrit :\nTexte",
            "Non.",
            "Texte",
            id="le-a-ecrit-wrapped-on-two-lines",
        ),
        pytest.param(
            "Le 3 mars, X a écrit :\n> votre facture\nMa réponse en dessous",
            "Ma réponse en dessous",
            "votre facture",
            id="bottom-posting-keeps-the-answer",
        ),
        pytest.param(
            "Mme Dupont\nDe : Mme Dupont\nObjet : facture\nJe conteste",
            "Je conteste",
            "(nothing)",
            id="letter-sender-line-is-not-a-quote-header",
        ),
    ],
)
def test_strip_quoted(text: str, kept: str, dropped: str) -> None:
    stripped = strip_quoted(text)
    assert kept in stripped
    assert dropped not in stripped


@pytest.mark.parametrize(
    ("text", "cue", "polarity"),
    [
        pytest.param("Il n'y a pas de fuite", "fuite", "negated", id="il-n-y-a-pas-de"),
        pytest.param("Aucune fuite n'est visible", "fuite", "negated", id="aucune"),
        pytest.param("je n'ai constaté aucune fuite", "fuite", "negated", id="constate-aucune"),
        pytest.param("il n'y a pas eu de fuite", "fuite", "negated", id="pas-eu-de"),
        pytest.param("y a pas de fuite", "fuite", "negated", id="colloquial-without-ne"),
        pytest.param("sans fuite apparente", "fuite", "negated", id="sans"),
        pytest.param("je n'ai plus de fuite", "fuite", "negated", id="ne-plus"),
        pytest.param("rien n'est inondé", "inonde", "negated", id="rien-n-est"),
        pytest.param("pas de risque d'inondation", "inondation", "negated", id="pas-de-risque"),
        pytest.param(
            "je ne souhaite pas porter plainte", "plainte", "negated", id="ne-souhaite-pas-porter"
        ),
        pytest.param("je ne porterai pas plainte", "plainte", "negated", id="ne-porterai-pas"),
        pytest.param("je ne conteste pas la facture", "conteste", "negated", id="ne-verb-pas"),
        pytest.param(
            "je n'hésiterai pas à porter plainte", "plainte", "affirmed", id="litotes-hesiter"
        ),
        pytest.param("je n'exclus pas de porter plainte", "plainte", "affirmed", id="litotes"),
        pytest.param("je vais porter plainte", "plainte", "affirmed", id="plain-threat"),
        pytest.param("sinon je porterai plainte", "plainte", "conditional", id="sinon"),
        pytest.param(
            "je vais porter plainte si rien ne change", "plainte", "conditional", id="post-si"
        ),
        pytest.param(
            "Si vous ne répondez pas, je porterai plainte", "plainte", "conditional", id="si-comma"
        ),
        pytest.param(
            "si vous ne faites rien je porte plainte", "plainte", "conditional", id="si-no-comma"
        ),
        pytest.param("En cas de fuite, que faire ?", "fuite", "hypothetical", id="en-cas-de"),
        pytest.param("comment savoir si j'ai une fuite", "fuite", "hypothetical", id="savoir-si"),
        pytest.param("au cas où il y aurait une fuite", "fuite", "hypothetical", id="au-cas-ou"),
        pytest.param("risque d'inondation de la cave", "inondation", "risk", id="risque"),
        pytest.param(
            "je n'ai pas reçu ma facture", "facture", "affirmed", id="negated-verb-not-the-noun"
        ),
        pytest.param("ne répond pas à ma réclamation", "reclamation", "affirmed", id="pas-a-ma-x"),
    ],
)
def test_polarity(text: str, cue: str, polarity: Polarity) -> None:
    tokens = tokenize(text)
    index = next(i for i, t in enumerate(tokens) if t.word == cue)
    assert polarity_of(tokens, index, index + 1) == polarity


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs", "Cc", "S")),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_fold_offsets_point_into_the_source(text: str) -> None:
    folded, offsets = fold_with_offsets(text)
    assert len(offsets) == len(folded)
    assert list(offsets) == sorted(offsets)
    assert all(0 <= o < len(text) for o in offsets)
    assert fold(folded) == folded  # idempotent


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_tokenize_never_fails_and_spans_are_valid(text: str) -> None:
    tokens = tokenize(text)
    for token in tokens:
        assert token.word
        assert 0 <= token.start < token.end <= len(text)
    assert [t.clause for t in tokens] == sorted(t.clause for t in tokens)
    for index in range(len(tokens)):
        polarity_of(tokens, index, index + 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=12))
def test_strip_quoted_only_removes_lines(lines: list[str]) -> None:
    text = "\n".join(lines)
    kept = strip_quoted(text).splitlines()
    source = {line.strip() for line in text.splitlines()}
    assert all(line.strip() in source for line in kept)
    assert not any(line.lstrip().startswith(">") for line in kept)


@pytest.mark.parametrize(
    ("text", "folded", "offsets"),
    [
        pytest.param("e\u0301te\u0301", "ete", [0, 2, 3], id="decomposed-accents"),
        pytest.param("sœur", "soeur", [0, 1, 1, 2, 3], id="ligature"),
        pytest.param("Été…", "ete...", [0, 1, 2, 3, 3, 3], id="ellipsis"),
        pytest.param("Déjà", "deja", [0, 1, 2, 3], id="one-for-one"),
    ],
)
def test_fold_offsets_of_changing_lengths(text: str, folded: str, offsets: list[int]) -> None:
    result, positions = fold_with_offsets(text)
    assert (result, list(positions)) == (folded, offsets)


_FRENCH = st.text(
    alphabet=st.one_of(
        st.sampled_from("aeiouAEIOU éèêëàâîïôûùçÉÈÇŒœæß’`´…«»\u0301\u0327 -,.\n'"),
        st.characters(codec="utf-8"),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(_FRENCH)
def test_fold_folds_each_character_on_its_own(text: str) -> None:
    pieces = [fold(char) for char in text]
    folded, offsets = fold_with_offsets(text)
    assert folded == "".join(pieces) == fold(text)
    assert list(offsets) == [index for index, piece in enumerate(pieces) for _ in piece]


_SHARED = WordForms()


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_a_shared_word_memo_reads_like_a_fresh_one(text: str) -> None:
    assert tokenize(text, forms=_SHARED) == tokenize(text)
    assert tokenize(text, forms=_SHARED) == tokenize(text)  # once more, from the memo


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=12))
def test_a_quoted_line_at_the_end_changes_nothing_kept(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert strip_quoted(f"{text}\n> Vous pouvez saisir le médiateur.") == strip_quoted(text)


def test_a_text_without_quotes_keeps_every_line() -> None:
    assert strip_quoted("Bonjour,\r\nfuite au compteur.\r\n\r\nMerci ") == (
        "Bonjour,\nfuite au compteur.\n\nMerci"
    )
