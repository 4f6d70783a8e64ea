"""Plain e-mails: quoted history removed and signatures trimmed (issue 4, "Parsing")."""

from __future__ import annotations

import pytest

from services.intake_mail.domain.replies import customer_text, strip_quoted_history, trim_signature

ANSWER = "Bonjour,\nLe compteur fuit toujours."


@pytest.mark.parametrize(
    ("history", "kept"),
    [
        pytest.param(
            "\n\nLe lun. 3 mars 2025 à 10:12, Service client <sc@example.org> a écrit :\n"
            "> Bonjour\n> --",
            ANSWER,
            id="french-gmail",
        ),
        pytest.param(
            "\n\nLe 3 mars 2025 à 10:12, Service client\n<sc@example.org> a écrit :\n\n> Bonjour",
            ANSWER,
            id="french-wrapped-header",
        ),
        pytest.param(
            "\n\nOn Mon, Mar 3, 2025 at 10:12 AM Customer Service <sc@example.org> wrote:\n> Hi",
            ANSWER,
            id="english",
        ),
        pytest.param(
            "\n\nLe 03/03/2025 10:12, sc@example.org a écrit :\nBonjour, message non marqué.",
            ANSWER,
            id="unmarked-history-after-header",
        ),
        pytest.param(
            "\n\n-----Message d'origine-----\nDe : Service client\nEnvoyé : lundi 3 mars\n"
            "Objet : X\n\nY",
            ANSWER,
            id="outlook-message-d-origine",
        ),
        pytest.param(
            "\n\n-----Original Message-----\nFrom: Service\nSent: Monday\nSubject: X\n\nY",
            ANSWER,
            id="outlook-original-message",
        ),
        pytest.param(
            "\n\n________________________________\nDe : Service client <sc@example.org>\n"
            "Envoyé : lundi 3 mars 2025 10:12\nÀ : Jeanne Martin\nObjet : RE: Fuite\n\nAncien",
            ANSWER,
            id="outlook-header-block",
        ),
        pytest.param(
            "\n\n*From:* Service client\n*Sent:* Monday, March 3, 2025\n*To:* Jeanne\n*Subject:* X",
            ANSWER,
            id="outlook-bold-block",
        ),
        pytest.param("\n> ligne citée\n>> encore", ANSWER, id="bare-quoted-lines"),
    ],
)
def test_quoted_history_removed(history: str, kept: str) -> None:
    assert strip_quoted_history(ANSWER + history) == kept


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        pytest.param(
            "> Quelle est votre adresse ?\n12 rue des Lilas\n> Et votre index ?\n4512",
            "12 rue des Lilas\n4512",
            id="inline-answers-kept",
        ),
        pytest.param(
            "Le 3 mars, X a écrit :\n> question\n\nMa réponse en dessous.",
            "Ma réponse en dessous.",
            id="bottom-posting-kept",
        ),
        pytest.param(
            "Le compteur fuit, mon voisin a écrit : attention.\nSuite du message.",
            "Le compteur fuit, mon voisin a écrit : attention.\nSuite du message.",
            id="sentence-with-a-ecrit-kept",
        ),
        pytest.param(
            "De : mon voisin\nil dit que la rue est inondée.",
            "De : mon voisin\nil dit que la rue est inondée.",
            id="de-line-without-block-kept",
        ),
    ],
)
def test_what_is_not_history_stays(text: str, kept: str) -> None:
    assert strip_quoted_history(text) == kept


@pytest.mark.parametrize(
    ("signature", "kept"),
    [
        pytest.param("\n\n-- \nJeanne Martin\n06 12 34 56 78", ANSWER, id="dash-dash-space"),
        pytest.param("\n--\nJeanne Martin", ANSWER, id="dash-dash"),
        pytest.param("\n\nEnvoyé de mon iPhone", ANSWER, id="iphone"),
        pytest.param("\n\nSent from my Galaxy", ANSWER, id="sent-from-my"),
        pytest.param("\n\nTélécharger Outlook pour Android", ANSWER, id="outlook-mobile"),
        pytest.param(
            "\n\nCordialement,\nJeanne Martin\n12 rue des Lilas\n06 12 34 56 78",
            ANSWER + "\n\nCordialement,",
            id="cordialement-tail",
        ),
        pytest.param("\nBien à vous\nJ. Martin", ANSWER + "\nBien à vous", id="bien-a-vous"),
        pytest.param(
            "\n\nCordialement,\nJeanne\nP.S. : la fuite a repris ce soir.",
            ANSWER + "\n\nCordialement,\nJeanne\nP.S. : la fuite a repris ce soir.",
            id="postscript-kept",
        ),
        pytest.param(
            "\n\nMerci.\nIl faudrait aussi vérifier le compteur de la cave.",
            ANSWER + "\n\nMerci.\nIl faudrait aussi vérifier le compteur de la cave.",
            id="sentence-after-merci-kept",
        ),
        pytest.param(
            "\n\nCordialement,\n" + "\n".join(f"ligne {n}" for n in range(10)),
            ANSWER + "\n\nCordialement,\n" + "\n".join(f"ligne {n}" for n in range(10)),
            id="long-tail-kept",
        ),
    ],
)
def test_signature_trimmed(signature: str, kept: str) -> None:
    assert trim_signature(ANSWER + signature) == kept


def test_customer_text_never_empties_a_mail() -> None:
    forward = (
        "-----Original Message-----\nFrom: Voisin\nSent: Monday\nTo: Jeanne\n\nLa rue est inondée."
    )
    assert customer_text(forward) == forward
    assert customer_text("   ") == ""


def test_customer_text_combines_both() -> None:
    mail = ANSWER + "\n\nCordialement,\nJeanne\n\nLe 3 mars 2025, SC a écrit :\n> Bonjour"
    assert customer_text(mail) == ANSWER + "\n\nCordialement,"
