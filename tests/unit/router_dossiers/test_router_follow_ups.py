"""Follow-ups on existing dossiers: cancellation (5.1.7.2 a), complaint after closure (4.9), RDR."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from schemas import IntakeItem, SenderHints
from services.router.domain.classification import Classification
from services.router.domain.dossiers import (
    AttachToDossier,
    CancelRequest,
    DossierView,
    FollowUpPolicy,
    OpenDossier,
    decide,
)
from services.router.domain.effects import plan
from services.router.domain.identification import Identification

NOW = dt.datetime(2026, 9, 15, 10, tzinfo=dt.UTC)
POLICY = FollowUpPolicy(fac_service="customer_service", window=dt.timedelta(days=60))
CUSTOMER = Identification("123456789", "reference", True, "test")
BASE = Classification(
    kind="reclamation", dossier_type="FUITE", service="field_ops", urgency="normale",
    sensitive=(), in_perimeter=True, needs_field_work=True, blocks_dunning=False, reasons=("r",),
)  # fmt: skip
ITEM = IntakeItem(
    item_id="email:42", channel="email", received_at=NOW, source_ref="INBOX/42",
    sender=SenderHints(customer_ref="123456789"),
)  # fmt: skip


def _view(
    dossier_id: str,
    dossier_type: str,
    status: str,
    closed_days_ago: int | None = None,
    *,
    dunning: bool = False,
) -> DossierView:
    closed = NOW - dt.timedelta(days=closed_days_ago) if closed_days_ago is not None else None
    return DossierView(dossier_id, dossier_type, status, "123456789", "billing", closed, dunning)


def _with(**changes: object) -> Classification:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("classification", "dossiers", "kind", "target"),
    [
        pytest.param(_with(cancellation=True), [_view("D1", "FUITE", "open")], CancelRequest, "D1", id="cancel-same-type"),
        pytest.param(_with(cancellation=True, dossier_type="INFO"), [_view("D1", "COMPTEUR", "open")], CancelRequest, "D1", id="cancel-the-only-open-one"),
        pytest.param(_with(cancellation=True, dossier_type="INFO"), [_view("D1", "COMPTEUR", "open"), _view("D2", "FACTURE", "open")], OpenDossier, None, id="cancel-ambiguous-opens-for-a-person"),
        pytest.param(_with(cancellation=True), [], OpenDossier, None, id="nothing-to-cancel"),
        pytest.param(_with(cancellation=True, dossier_type="MENSUALISATION"), [_view("D1", "FUITE", "open")], OpenDossier, None, id="cancel-names-another-request-than-the-open-one"),
        pytest.param(_with(cancellation=True, dossier_type="FACTURE"), [_view("D1", "FACTURE", "closed", 4)], OpenDossier, "D1", id="cancel-after-closure-links-the-closed-one"),
        # an INFO dossier is open: a second one would break the one-open-dossier index
        pytest.param(_with(cancellation=True, dossier_type="MENSUALISATION"), [_view("D1", "INFO", "open"), _view("D2", "FUITE", "open")], AttachToDossier, "D1", id="cancel-to-check-joins-the-open-info"),
        pytest.param(_with(), [_view("D1", "FUITE", "closed", 10), _view("D2", "FAC", "open")], AttachToDossier, "D2", id="second-complaint-after-closure-joins-the-open-fac"),
        pytest.param(_with(dossier_type="FAC"), [_view("D2", "FAC", "open")], AttachToDossier, "D2", id="fac-cues-join-the-open-fac"),
        pytest.param(_with(), [_view("D1", "FUITE", "open")], AttachToDossier, "D1", id="multicontact"),
        pytest.param(_with(), [_view("D1", "FUITE", "closed", 10)], OpenDossier, "D1", id="complaint-after-closure-is-fac"),
        pytest.param(_with(), [_view("D1", "FUITE", "closed", 90)], OpenDossier, None, id="closure-too-old"),
        pytest.param(_with(kind="demande"), [_view("D1", "FUITE", "closed", 10)], OpenDossier, None, id="request-after-closure-is-new"),
        pytest.param(_with(dossier_type="FAC"), [_view("D9", "INDEX", "closed", 5)], OpenDossier, "D9", id="fac-cues-link-latest-closed"),
        pytest.param(_with(dossier_type="RDR", service="escalations"), [_view("D3", "FACTURE", "closed", 20)], OpenDossier, "D3", id="rdr-linked"),
        pytest.param(_with(dossier_type="RDR", service="escalations"), [_view("D3", "FACTURE", "closed", 20), _view("D4", "FACTURE", "open")], OpenDossier, "D4", id="rdr-linked-to-the-request-still-open"),
    ],
)  # fmt: skip
def test_follow_up_decisions(
    classification: Classification, dossiers: list[DossierView], kind: type, target: str | None
) -> None:
    decision = decide(ITEM, classification, CUSTOMER, dossiers, POLICY)
    assert isinstance(decision, kind)
    if isinstance(decision, CancelRequest):
        assert decision.dossier.dossier_id == target
    elif isinstance(decision, AttachToDossier):
        assert decision.dossier_id == target
    elif isinstance(decision, OpenDossier):
        assert decision.linked_dossier_id == target


def test_fac_dossier_is_requalified_and_linked() -> None:
    decision = decide(ITEM, _with(), CUSTOMER, [_view("D1", "FUITE", "closed", 3)], POLICY)
    effects = plan(ITEM, _with(), CUSTOMER, decision, NOW)
    assert effects.opened is not None
    assert (effects.opened.dossier_type, effects.opened.kind, effects.opened.service) == (
        "FAC",
        "reclamation",
        "customer_service",
    )
    assert effects.opened.linked_dossier_id == "D1"


def test_sensitive_fac_stays_with_the_sensitive_team() -> None:
    sensitive = _with(sensitive=("juridique",), service="sensitive_mail")
    decision = decide(ITEM, sensitive, CUSTOMER, [_view("D1", "FUITE", "closed", 3)], POLICY)
    assert isinstance(decision, OpenDossier)
    assert decision.requalified is not None
    assert decision.requalified.service == "sensitive_mail"


def test_cancellation_cancels_tells_the_owner_and_unblocks_dunning() -> None:
    dossier = _view("D1", "FACTURE", "open", dunning=True)
    decision = decide(
        ITEM, _with(dossier_type="FACTURE", cancellation=True), CUSTOMER, [dossier], POLICY
    )
    effects = plan(ITEM, BASE, CUSTOMER, decision, NOW)
    assert effects.cancelled is not None
    assert effects.cancelled.dossier_id == "D1"
    assert effects.attached is not None
    assert [(t.service, t.action) for t in effects.tasks] == [("billing", "request_cancelled")]
    assert [a.action for a in effects.account_actions] == ["unblock_dunning"]


def test_unidentified_sender_never_cancels_or_attaches() -> None:
    nobody = Identification(None, "none", True, "test")
    decision = decide(
        ITEM, _with(cancellation=True), nobody, [_view("D1", "FUITE", "open")], POLICY
    )
    assert isinstance(decision, OpenDossier)


@pytest.mark.parametrize(
    "dossiers",
    [
        pytest.param([], id="nothing-open"),
        pytest.param([_view("D1", "FUITE", "open")], id="another-request-open"),
        pytest.param([_view("D1", "FACTURE", "closed", 4, dunning=True)], id="already-closed"),
    ],
)
def test_cancellation_that_cancels_nothing_opens_no_request_of_its_type(
    dossiers: list[DossierView],
) -> None:
    """5.1.7.2 a: "j'annule ma demande de facture" with no open FACTURE dossier must not
    cancel another request, nor open a FACTURE dossier that blocks dunning (4.13)."""
    cancelling = _with(dossier_type="FACTURE", service="billing", cancellation=True)
    decision = decide(ITEM, cancelling, CUSTOMER, dossiers, POLICY)
    assert isinstance(decision, OpenDossier)
    effects = plan(ITEM, cancelling, CUSTOMER, decision, NOW)
    assert effects.cancelled is None
    assert effects.opened is not None
    assert (effects.opened.dossier_type, effects.opened.kind, effects.opened.service) == (
        "INFO",
        "demande",
        "customer_service",
    )
    assert effects.account_actions == ()
    assert any("à vérifier" in reason for reason in decision.reasons)
