"""Telephone number normalisation: E.164, hidden callers, mobiles."""

from __future__ import annotations

import pytest

from services.intake_phone.domain import PayloadRejected
from services.intake_phone.domain.numbers import Party, is_mobile, party, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("0612345678", Party("+33612345678"), id="national-mobile"),
        pytest.param("06 12 34 56 78", Party("+33612345678"), id="spaced"),
        pytest.param("06.12.34.56.78", Party("+33612345678"), id="dotted"),
        pytest.param("+33 6 12 34 56 78", Party("+33612345678"), id="international"),
        pytest.param("0033612345678", Party("+33612345678"), id="idd-00"),
        pytest.param("33612345678", Party("+33612345678"), id="ringover-no-plus"),
        pytest.param("32470123456", Party("+32470123456"), id="belgian-no-plus"),
        pytest.param("+41 79 123 45 67", Party("+41791234567"), id="swiss"),
        pytest.param("0972108080", Party("+33972108080"), id="service-line"),
        pytest.param("0639980001", Party("+262639980001"), id="possible-not-allocated"),
        # overseas numbers in the national format ring overseas, not in France (+33)
        pytest.param("0692 12 34 56", Party("+262692123456"), id="reunion-mobile"),
        pytest.param("0590123456", Party("+590590123456"), id="guadeloupe-landline"),
        pytest.param("0696123456", Party("+596696123456"), id="martinique-mobile"),
        pytest.param("0694123456", Party("+594694123456"), id="guyane-mobile"),
        pytest.param("+262692123456", Party("+262692123456"), id="reunion-international"),
        pytest.param("1001", Party("1001"), id="extension-kept-raw"),
        pytest.param("3949", Party("3949"), id="short-number-kept-raw"),
        pytest.param("sip:1001@pbx.example.fr", Party("1001"), id="sip-uri"),
        pytest.param("anonymous", Party(None, hidden=True), id="anonymous"),
        pytest.param("Numéro masqué", Party(None, hidden=True), id="masque"),
        pytest.param("Restricted", Party(None, hidden=True), id="restricted"),
        pytest.param("+266696687", Party(None, hidden=True), id="twilio-anonymous"),
        pytest.param("+86282452253", Party(None, hidden=True), id="twilio-unavailable"),
        pytest.param("<unknown>", Party(None), id="ami-unknown"),
        pytest.param("", Party(None), id="empty"),
        pytest.param(None, Party(None), id="absent"),
    ],
)
def test_phone_party_normalisation(raw: str | None, expected: Party) -> None:
    assert party(raw) == expected


def test_phone_hidden_flag_wins_over_the_number() -> None:
    assert party("0612345678", hidden=True) == Party(None, hidden=True)


@pytest.mark.parametrize(
    "raw", [pytest.param("Jean <06>", id="name"), pytest.param("x" * 80, id="too-long")]
)
def test_phone_a_non_number_is_rejected(raw: str) -> None:
    with pytest.raises(PayloadRejected) as caught:
        party(raw)
    assert caught.value.reason_code == "invalid_number"


@pytest.mark.parametrize(
    ("number", "mobile"),
    [
        pytest.param("+33612345678", True, id="fr-06"),
        pytest.param("+33755123456", True, id="fr-07"),
        pytest.param("+33199001234", False, id="fr-fixed"),
        pytest.param("+33972108080", False, id="fr-voip"),
        pytest.param("+33639980001", False, id="unallocated"),
        pytest.param("1001", False, id="extension"),
        pytest.param(None, False, id="none"),
    ],
)
def test_phone_is_mobile(number: str | None, mobile: bool) -> None:
    assert is_mobile(number) is mobile


def test_phone_to_e164_refuses_garbage() -> None:
    assert to_e164("not a number") is None
    assert to_e164("1" * 30) is None
