"""Qualification of one contact (procedure 4.6, 4.7, 4.9, 4.13, 5.1.2, 5.1.4)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.topics import SERVICE_QUEUES
from services.router.domain.classification import Classification, classify
from services.router.domain.rules import SENSITIVE_CODES, RuleSet
from services.router.rules_loader import load_rules


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def _classify(
    rules: RuleSet,
    text: str,
    *,
    subject: str | None = None,
    channel: str = "email",
    tsa_box: str | None = None,
) -> Classification:
    return classify(subject=subject, text=text, channel=channel, tsa_box=tsa_box, rules=rules)


@pytest.mark.parametrize(
    ("text", "sensitive"),
    [
        pytest.param("Je vous mets en demeure de me rembourser.", ("juridique",), id="juridique"),
        pytest.param("J'ai transmis le dossier à mon avocat.", ("juridique",), id="avocat"),
        pytest.param(
            "J'ai saisi le Défenseur des droits.", ("defenseur_association",), id="defenseur"
        ),
        pytest.param(
            "Sans réponse je saisirai le médiateur de l'eau.",
            ("defenseur_association",),
            id="mediateur-conditional",
        ),
        pytest.param("Je vais alerter la presse locale.", ("image",), id="image"),
        pytest.param("Je vais tout publier sur Facebook.", ("image",), id="reseaux-sociaux"),
        pytest.param(
            "Je demande la suppression de mes données personnelles (RGPD).", ("rgpd",), id="rgpd"
        ),
        pytest.param("Je vais porter plainte contre vous.", ("plainte",), id="plainte"),
        pytest.param("Réglez ce problème, sinon je porterai plainte.", ("plainte",), id="sinon"),
        pytest.param(
            "Je vais porter plainte si rien ne bouge.", ("plainte",), id="threat-followed-by-si"
        ),
        pytest.param("Je n'hésiterai pas à porter plainte.", ("plainte",), id="litotes"),
        pytest.param(
            "La fuite a causé des dégâts, mon assureur va vous écrire.",
            ("sinistre",),
            id="sinistre",
        ),
        pytest.param(
            "Monsieur le Maire de la commune vous signale une anomalie.",
            ("collectivite",),
            id="collectivite",
        ),
        pytest.param(
            "Mise en demeure : je saisirai le tribunal et la presse.",
            ("image", "juridique", "plainte"),
            id="several-sorted",
        ),
        pytest.param("Je ne souhaite pas porter plainte.", (), id="negated-threat"),
        pytest.param("Heureusement aucun dégât.", (), id="negated-damage"),
        pytest.param("En cas de sinistre, que couvre l'assurance ?", (), id="hypothetical-damage"),
        pytest.param("La mairie m'a dit de vous écrire.", (), id="mere-mention-of-town-hall"),
        pytest.param(
            "Merci.\n\nLe 3 mars, Service Client a écrit :\nVous pouvez saisir le Médiateur.",
            (),
            id="quoted-footer-ignored",
        ),
        pytest.param("> mise en demeure\nMerci pour votre retour.", (), id="angle-quote-ignored"),
    ],
)
def test_sensitive_categories(rules: RuleSet, text: str, sensitive: tuple[str, ...]) -> None:
    result = _classify(rules, text)
    assert result.sensitive == sensitive
    if sensitive and result.urgency != "urgent":
        assert result.service == "sensitive_mail"


@pytest.mark.parametrize(
    ("text", "dossier_type", "kind"),
    [
        pytest.param("Je conteste ma facture, le montant est faux.", "FACTURE", "reclamation"),
        pytest.param("Pouvez-vous m'envoyer un duplicata de ma facture ?", "FACTURE", "demande"),
        pytest.param("Puis-je payer en plusieurs fois ? Un échéancier ?", "REGLEMENT", "demande"),
        pytest.param(
            "Fuite après compteur réparée, je demande un dégrèvement.", "DEGREVEMENT", "demande"
        ),
        pytest.param("Je déménage le 30, merci de résilier mon contrat.", "RESILIATION", "demande"),
        pytest.param("Mon mari est décédé, mettez le contrat à mon nom.", "MUTATION", "demande"),
        pytest.param("Je souhaite être mensualisé, voici mon RIB.", "MENSUALISATION", "demande"),
        pytest.param("Voici mon index : 01234.", "INDEX", "demande"),
        pytest.param("Mon compteur ne tourne plus.", "COMPTEUR", "reclamation", id="anomaly-cue"),
        pytest.param("Fuite d'eau sur le trottoir devant chez moi.", "FUITE", "reclamation"),
        pytest.param("L'eau a un goût de chlore.", "QUALITE_EAU", "reclamation"),
        pytest.param("Quelle est la dureté de l'eau ?", "QUALITE_EAU", "demande", id="info-cue"),
        pytest.param("La pression est très faible au robinet.", "PRESSION", "reclamation"),
        pytest.param("Je voudrais un devis de branchement neuf.", "BRANCHEMENT", "demande"),
        pytest.param("Les eaux usées refoulent dans la douche.", "ASSAINISSEMENT", "reclamation"),
        pytest.param("Voici ma nouvelle adresse mail : a@b.fr", "COORDONNEES", "demande"),
        pytest.param("J'ai un dossier FSL avec le CCAS.", "FSL", "demande"),
        pytest.param("J'ai reçu un avis de passage, je veux un rendez-vous.", "ICT", "demande"),
        pytest.param(
            "Votre réponse ne me satisfait pas, vous avez clôturé mon dossier sans rien vérifier.",
            "FAC",
            "reclamation",
            id="fac-needs-a-complaint",
        ),
        pytest.param("Il n'y a pas de fuite chez moi.", "INFO", "demande", id="negated-leak"),
        pytest.param("Que faire en cas de fuite ?", "INFO", "demande", id="hypothetical-leak"),
        pytest.param("Bonjour,\nCordialement.", "INFO", "demande", id="no-match"),
        pytest.param("", "INFO", "demande", id="empty"),
        pytest.param("Je vais porter plainte.", "INFO", "reclamation", id="threat-is-complaint"),
    ],
)
def test_dossier_type_and_kind(rules: RuleSet, text: str, dossier_type: str, kind: str) -> None:
    result = _classify(rules, text)
    assert (result.dossier_type, result.kind) == (dossier_type, kind)
    assert result.blocks_dunning is rules.dictionary.get(dossier_type).blocks_dunning


def test_no_match_is_a_result_with_a_reason(rules: RuleSet) -> None:
    result = _classify(rules, "Bonjour")
    assert (result.dossier_type, result.kind, result.urgency) == ("INFO", "demande", "normale")
    assert result.service == "customer_service"
    assert any(r.startswith("aucun type reconnu") for r in result.reasons)


@pytest.mark.parametrize(
    ("text", "tsa_box", "channel"),
    [
        pytest.param("Je conteste encore ma facture.", "60002", "letter", id="tsa-box"),
        pytest.param("Courrier au Directeur, TSA 60002, La Châtre.", None, "letter", id="tsa-text"),
        pytest.param("Formulaire autres recours amiables : insatisfait.", None, "email", id="form"),
    ],
)
def test_escalations_are_rdr(rules: RuleSet, text: str, tsa_box: str | None, channel: str) -> None:
    result = _classify(rules, text, tsa_box=tsa_box, channel=channel)
    assert (result.dossier_type, result.kind, result.service) == (
        "RDR",
        "reclamation",
        "escalations",
    )
    assert result.blocks_dunning


def test_rdr_stays_with_the_escalation_team_when_sensitive(rules: RuleSet) -> None:
    result = _classify(rules, "Sinon je saisis le médiateur.", tsa_box="60002", channel="letter")
    assert result.sensitive == ("defenseur_association",)
    assert result.service == "escalations"


@pytest.mark.parametrize(
    ("text", "urgency"),
    [
        pytest.param("La canalisation a éclaté, la cave est inondée !", "urgent", id="flood"),
        pytest.param("L'eau jaillit du trottoir, ça coule dans les caves.", "urgent", id="geyser"),
        pytest.param("Les eaux usées débordent des WC.", "urgent", id="sewer-overflow"),
        pytest.param("Fuite au compteur, risque d'inondation du garage.", "urgent", id="risk"),
        pytest.param("Nous n'avons plus d'eau depuis ce matin.", "prioritaire", id="no-water"),
        pytest.param("Fuite au niveau du compteur, pas d'inondation.", "prioritaire", id="meter"),
        pytest.param("Que faire en cas d'inondation ?", "normale", id="hypothetical"),
        pytest.param("Aucune inondation, juste une question.", "normale", id="negated"),
        pytest.param(
            "La fuite réparée hier par vos équipes a inondé mon sous-sol.", "normale", id="past"
        ),
        pytest.param(
            "Fuite après compteur réparée, cave inondée : je demande un dégrèvement.",
            "normale",
            id="capped-by-type",
        ),
    ],
)
def test_urgency(rules: RuleSet, text: str, urgency: str) -> None:
    result = _classify(rules, text)
    assert result.urgency == urgency
    if urgency != "normale":
        assert result.needs_field_work


def test_urgent_sensitive_mail_goes_to_the_field_first(rules: RuleSet) -> None:
    result = _classify(rules, "La cave est inondée, ça monte ! Je vais porter plainte.")
    assert result.urgency == "urgent"
    assert result.service == "field_ops"
    assert result.also_notify == ("sensitive_mail",)


def test_prioritaire_sensitive_mail_also_notifies_the_owner(rules: RuleSet) -> None:
    result = _classify(rules, "Plus d'eau depuis ce matin. Je préviens la presse.")
    assert (result.urgency, result.service) == ("prioritaire", "sensitive_mail")
    assert result.also_notify == ("field_ops",)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Ma facture d'électricité EDF a doublé, vérifiez mon Linky.", id="energy"),
        pytest.param("Les poubelles ne sont pas ramassées.", id="waste"),
        pytest.param("Voici ma candidature spontanée et mon CV.", id="job"),
    ],
)
def test_out_of_perimeter(rules: RuleSet, text: str) -> None:
    result = _classify(rules, text)
    assert not result.in_perimeter
    assert (result.service, result.dossier_type, result.kind) == (
        "perimeter_review",
        "INFO",
        "demande",
    )
    assert not result.blocks_dunning
    assert result.reasons[0].startswith("hors périmètre (5.1.2)")


def test_water_bill_mentioning_electricity_stays_in_perimeter(rules: RuleSet) -> None:
    result = _classify(rules, "Ma facture d'eau est plus chère que ma facture d'électricité.")
    assert result.in_perimeter


def test_reasons_quote_the_customer_words(rules: RuleSet) -> None:
    result = _classify(rules, "Je vous adresse une MISE EN DEMEURE pour cette fuite.")
    assert "sensible/juridique: « MISE EN DEMEURE »" in result.reasons
    assert any(r.startswith("type FUITE: « fuite »") for r in result.reasons)


def test_reasons_say_why_a_cue_was_not_kept(rules: RuleSet) -> None:
    result = _classify(rules, "Je ne souhaite pas porter plainte.")
    assert "non retenu sensible/plainte (négation): « porter plainte »" in result.reasons


def test_reply_subject_is_not_the_customers_words(rules: RuleSet) -> None:
    result = _classify(rules, "Merci, c'est noté.", subject="RE: Votre réclamation - avocat")
    assert result.sensitive == ()
    assert result.kind == "demande"


def test_subject_helps_the_type(rules: RuleSet) -> None:
    result = _classify(rules, "Voir pièce jointe, merci.", subject="Demande de mensualisation")
    assert result.dossier_type == "MENSUALISATION"


def test_as_dict_is_json_and_has_the_cli_keys(rules: RuleSet) -> None:
    result = _classify(rules, "Fuite au compteur, je conteste la facture, mon avocat suit.")
    data = json.loads(json.dumps(result.as_dict()))
    for key in ("kind", "sensitive", "urgency", "dossier_type", "in_perimeter", "service"):
        assert key in data
    assert data["reasons"] == list(result.reasons)


def test_a_very_long_text_is_read_up_to_the_limit_with_a_reason(rules: RuleSet) -> None:
    limit = rules.dictionary.max_text_chars
    result = _classify(rules, "Il y a une fuite sur le trottoir. " * (limit // 20))
    assert result.reasons[0].startswith(f"texte tronqué: {limit} premiers caractères")
    assert result.dossier_type == "FUITE"


def test_classification_is_frozen(rules: RuleSet) -> None:
    result = _classify(rules, "Bonjour")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.kind = "reclamation"  # type: ignore[misc]


@settings(max_examples=120, deadline=None)
@given(
    text=st.text(max_size=400),
    subject=st.none() | st.text(max_size=60),
    tsa_box=st.none() | st.sampled_from(["50001", "60002"]),
)
def test_classify_never_fails_and_stays_in_range(
    rules: RuleSet, text: str, subject: str | None, tsa_box: str | None
) -> None:
    result = _classify(rules, text, subject=subject, tsa_box=tsa_box, channel="letter")
    assert result.service in SERVICE_QUEUES
    assert set(result.also_notify) <= set(SERVICE_QUEUES)
    assert rules.dictionary.get(result.dossier_type)
    assert result.sensitive == tuple(sorted(result.sensitive))
    assert set(result.sensitive) <= set(SENSITIVE_CODES)
    assert result.reasons
    if tsa_box == "60002":
        assert result.dossier_type == "RDR"
