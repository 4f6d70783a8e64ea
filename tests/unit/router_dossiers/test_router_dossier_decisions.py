"""Dossier decisions and commands (procedure 4.2, 4.6, 4.8, 4.13, 4.15, 5.1.2, 5.1.7.2)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TypeVar

import pytest
from pydantic import BaseModel

from schemas import IntakeItem, PostalAddress, SenderHints
from schemas.dossiers import (
    AwaitThirdParty,
    CancelDossier,
    CloseDossier,
    DossierCommand,
    RecordReply,
    RequalifyDossier,
    RequireFieldWork,
)
from services.router.domain.classification import Classification
from services.router.domain.commands import CommandPolicy, DossierState, apply_command
from services.router.domain.dossiers import (
    AttachToDossier,
    DossierView,
    OpenDossier,
    ReviewPerimeter,
    decide,
    dossier_id_for,
    region_of,
)
from services.router.domain.effects import plan
from services.router.domain.identification import Identification

NOW = dt.datetime(2026, 6, 2, 9, 0, tzinfo=dt.UTC)
DossierCommandT = TypeVar("DossierCommandT", bound=BaseModel)


def _classification(**changes: object) -> Classification:
    values: dict[str, object] = {
        "kind": "reclamation",
        "dossier_type": "FACTURE",
        "service": "billing",
        "urgency": "normale",
        "sensitive": (),
        "in_perimeter": True,
        "needs_field_work": False,
        "blocks_dunning": True,
        "reasons": ("type FACTURE: « facture »",),
    } | changes
    return Classification(**values)  # type: ignore[arg-type]


def _item(
    *, ref: str | None = "123456789", internal: bool = False, postcode: str | None = None
) -> IntakeItem:
    address = PostalAddress(postcode=postcode) if postcode else None
    return IntakeItem(
        item_id="email:1",
        channel="email",
        received_at=NOW,
        source_ref="INBOX/1",
        sender=SenderHints(customer_ref=ref, email="client@example.test", postal_address=address),
        internal=internal,
    )


def _who(sender: SenderHints) -> Identification:
    ref = sender.customer_ref
    return Identification(ref, "reference" if ref else "none", True, "test")


OPEN_FACTURE = DossierView("DOS-A", "FACTURE", "open", "123456789")
OPEN_FUITE = DossierView("DOS-B", "FUITE", "open", "123456789")


@pytest.mark.parametrize(
    ("item", "classification", "dossiers", "expected"),
    [
        pytest.param(_item(), _classification(), [], OpenDossier, id="new-request-opens"),
        pytest.param(
            _item(), _classification(), [OPEN_FACTURE], AttachToDossier, id="same-request-attaches"
        ),
        pytest.param(_item(), _classification(), [OPEN_FUITE], OpenDossier, id="other-type-opens"),
        pytest.param(
            _item(),
            _classification(in_perimeter=False),
            [OPEN_FACTURE],
            ReviewPerimeter,
            id="out-of-perimeter",
        ),
        pytest.param(
            _item(internal=True),
            _classification(),
            [OPEN_FACTURE],
            OpenDossier,
            id="internal-never-attached",
        ),
        pytest.param(
            _item(ref=None),
            _classification(),
            [OPEN_FACTURE],
            OpenDossier,
            id="unidentified-never-attached",
        ),
    ],
)
def test_decide(
    item: IntakeItem, classification: Classification, dossiers: list[DossierView], expected: type
) -> None:
    decision = decide(item, classification, _who(item.sender), dossiers)
    assert isinstance(decision, expected)
    assert decision.reasons


def test_open_plans_event_task_and_dunning_block() -> None:
    item = _item(postcode="67000")
    customer = _who(item.sender)
    decision = decide(item, _classification(), customer, [])
    effects = plan(item, _classification(), customer, decision, NOW)
    assert effects.opened is not None
    assert effects.opened.dossier_id == dossier_id_for("email:1")
    assert effects.opened.region == "67"
    assert [(t.service, t.action) for t in effects.tasks] == [("billing", "handle_request")]
    assert [a.action for a in effects.account_actions] == ["block_dunning"]


def test_unidentified_sender_goes_to_identification_without_account_action() -> None:
    item = _item(ref=None)
    customer = _who(item.sender)
    effects = plan(
        item, _classification(), customer, decide(item, _classification(), customer, []), NOW
    )
    assert effects.opened is not None
    assert effects.opened.identified is False
    assert [(t.service, t.action) for t in effects.tasks] == [
        ("identification", "identify_customer")
    ]
    assert effects.account_actions == ()


def test_multicontact_signals_the_supervisor() -> None:
    item = _item()
    customer = _who(item.sender)
    effects = plan(item, _classification(), customer, AttachToDossier("DOS-A", ("4.8",)), NOW)
    assert effects.attached is not None
    assert effects.attached.dossier_id == "DOS-A"
    assert [(t.service, t.action, t.urgency) for t in effects.tasks] == [
        ("supervisor", "prioritise_multicontact", "prioritaire")
    ]


def test_out_of_perimeter_is_reviewed_not_recorded() -> None:
    item = _item()
    customer = _who(item.sender)
    effects = plan(
        item, _classification(in_perimeter=False), customer, ReviewPerimeter(("5.1.2",)), NOW
    )
    assert effects.opened is None
    assert [(t.service, t.dossier_id) for t in effects.tasks] == [("perimeter_review", None)]


def test_dossier_ids_are_deterministic() -> None:
    assert dossier_id_for("x") == dossier_id_for("x") != dossier_id_for("y")


@pytest.mark.parametrize(
    ("postcode", "region"),
    [
        pytest.param("57000", "57", id="moselle"),
        pytest.param("97400", "974", id="reunion"),
        pytest.param(None, None, id="none"),
    ],
)
def test_region_of(postcode: str | None, region: str | None) -> None:
    address = PostalAddress(postcode=postcode) if postcode else None
    assert region_of(SenderHints(postal_address=address)) == region


STATE = DossierState("DOS-A", "open", "FACTURE", "reclamation", "normale", False, "123456789", True)
COMMON = {"dossier_id": "DOS-A", "issued_at": NOW, "issued_by": "billing"}


def _cmd(cls: type[DossierCommandT], **fields: object) -> DossierCommandT:
    return cls.model_validate(COMMON | fields)


@pytest.mark.parametrize(
    ("command", "event_type", "status", "actions"),
    [
        pytest.param(
            _cmd(CloseDossier, command_id="c1"),
            "dossier_closed",
            "closed",
            ["unblock_dunning"],
            id="close",
        ),
        pytest.param(
            _cmd(CancelDossier, command_id="c2"),
            "dossier_cancelled",
            "cancelled",
            ["unblock_dunning"],
            id="cancel",
        ),
        pytest.param(
            _cmd(RecordReply, command_id="c3", medium="email"),
            "reply_sent",
            None,
            [],
            id="reply",
        ),
        pytest.param(
            _cmd(AwaitThirdParty, command_id="c4", third_party="mairie"),
            "third_party_awaited",
            None,
            [],
            id="third-party",
        ),
        pytest.param(
            _cmd(RequireFieldWork, command_id="c5"),
            "dossier_requalified",
            None,
            [],
            id="field-work",
        ),
        pytest.param(
            _cmd(RequalifyDossier, command_id="c6", kind="demande", reason="échéancier"),
            "dossier_requalified",
            None,
            [],
            id="requalify",
        ),
    ],
)
def test_commands(
    command: DossierCommand, event_type: str, status: str | None, actions: list[str]
) -> None:
    effects = apply_command(STATE, command, NOW)
    assert [e.type for e in effects.events] == [event_type]
    assert effects.updates.get("status") == status
    assert [a.action for a in effects.account_actions] == actions


def test_field_work_and_requalify_change_the_columns() -> None:
    field_work = apply_command(STATE, _cmd(RequireFieldWork, command_id="c5"), NOW)
    assert field_work.updates["needs_field_work"] is True
    requalified = apply_command(
        STATE, _cmd(RequalifyDossier, command_id="c6", kind="demande", reason="r"), NOW
    )
    assert requalified.updates["kind"] == "demande"
    assert requalified.updates["dossier_type"] == "FACTURE"


def test_commands_on_an_ended_dossier_change_nothing() -> None:
    closed = DossierState(
        "DOS-A", "closed", "FACTURE", "reclamation", "normale", False, "123456789", True
    )
    effects = apply_command(closed, _cmd(CloseDossier, command_id="c7"), NOW)
    assert (effects.events, effects.updates, effects.outcome) == ((), {}, "ignored: dossier closed")


POLICY = CommandPolicy(
    dunning_types=frozenset({"FACTURE", "REGLEMENT", "DEGREVEMENT", "RDR"}),
    owners={"FACTURE": "billing", "INFO": "customer_service", "FUITE": "field_ops"},
)


@pytest.mark.parametrize(
    ("old", "new", "action", "owner"),
    [
        pytest.param("FACTURE", "INFO", "unblock_dunning", "customer_service", id="out-of-a-blocking-type"),
        pytest.param("INFO", "FACTURE", "block_dunning", "billing", id="into-a-blocking-type"),
        pytest.param("INFO", "FUITE", None, "field_ops", id="neither-blocks"),
        pytest.param("FACTURE", "FACTURE", None, None, id="same-type"),
    ],
)  # fmt: skip
def test_requalifying_into_another_type_follows_its_dunning_and_its_owner(
    old: str, new: str, action: str | None, owner: str | None
) -> None:
    """4.13: dunning stays blocked exactly while a blocking request is open; 5.1.6 NB: the
    requalified dossier goes to its new type's owner."""
    state = dataclasses.replace(
        STATE,
        dossier_type=old,
        blocks_dunning=old in POLICY.dunning_types,
        service=POLICY.owners[old],
    )
    command = _cmd(RequalifyDossier, command_id="rq1", dossier_type=new, reason="erreur")
    effects = apply_command(state, command, NOW, POLICY)
    assert [a.action for a in effects.account_actions] == ([action] if action else [])
    assert all(a.action_id == f"DOS-A:rq1:{a.action}" for a in effects.account_actions)
    assert effects.updates.get("service") == owner
    assert [(t.service, t.action, t.dossier_type) for t in effects.tasks] == (
        [(owner, "handle_request", new)] if owner else []
    )
    # closing afterwards unblocks only what the dossier's type now blocks
    after = dataclasses.replace(state, dossier_type=new, blocks_dunning=new in POLICY.dunning_types)
    closing = apply_command(after, _cmd(CloseDossier, command_id="c9"), NOW, POLICY)
    unblocks = [a.action for a in closing.account_actions]
    assert unblocks == (["unblock_dunning"] if new in POLICY.dunning_types else [])


def test_a_sensitive_dossier_keeps_its_team_when_requalified() -> None:
    state = dataclasses.replace(STATE, service="sensitive_mail", sensitive=True)
    command = _cmd(RequalifyDossier, command_id="rq2", dossier_type="INFO", reason="r")
    effects = apply_command(state, command, NOW, POLICY)
    assert "service" not in effects.updates
    assert effects.tasks == ()
    assert [a.action for a in effects.account_actions] == ["unblock_dunning"]
