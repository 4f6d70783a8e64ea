"""Customer identification (procedure 5.1.2): reference, e-mail, mobile, then name + address."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import PostalAddress, SenderHints
from services.router.domain.identification import (
    CandidateIndex,
    DirectoryEntry,
    MatchPolicy,
    fold_name,
    identify_customer,
)

POLICY = MatchPolicy()
DIRECTORY = (
    DirectoryEntry("100000001", "Camille", "Durand", "camille.durand@example.test", "+33612345601", "69003", "12 rue des Tilleuls"),
    DirectoryEntry("100000002", "Louis", "Martin", None, "+33612345602", "57000", "3 place du Marché"),
    DirectoryEntry("100000003", "Inès", "Bernard", "ines.b@example.test", None, "69003", "40 avenue Félix Faure"),
    DirectoryEntry("100000004", "Jean", "Petit", None, None, "13001", "1 rue de Rome"),
    DirectoryEntry("100000005", "Jean", "Petit", None, None, "13001", "1 rue de Rome"),
)  # fmt: skip


def _address(line: str, postcode: str) -> PostalAddress:
    return PostalAddress(lines=(line,), postcode=postcode)


@pytest.mark.parametrize(
    ("hints", "ref", "method", "holder"),
    [
        pytest.param(SenderHints(customer_ref="100000001"), "100000001", "reference", True, id="ref"),
        pytest.param(
            SenderHints(customer_ref="100000001", first_name="Camille", last_name="DURAND"),
            "100000001", "reference", True, id="ref-holder-name-matches",
        ),
        pytest.param(
            SenderHints(customer_ref="100000001", first_name="Maître", last_name="Lefebvre"),
            "100000001", "reference", False, id="ref-written-by-interlocutor",
        ),
        pytest.param(SenderHints(email="camille.durand@example.test"), "100000001", "email", True, id="email"),
        pytest.param(SenderHints(mobile="+33612345602"), "100000002", "mobile", True, id="mobile"),
        pytest.param(
            SenderHints(first_name="Ines", last_name="Bernard", postal_address=_address("40 av. Felix Faure", "69003")),
            "100000003", "name_address", True, id="name-address-accents-abbreviation",
        ),
        pytest.param(
            SenderHints(first_name="Inès", last_name="Bernardin", postal_address=_address("2 rue Neuve", "69003")),
            None, "none", True, id="name-address-too-far",
        ),
        pytest.param(
            SenderHints(first_name="Jean", last_name="Petit", postal_address=_address("1 rue de Rome", "13001")),
            None, "none", True, id="homonyms-left-to-a-person",
        ),
        pytest.param(SenderHints(customer_ref="999999999"), "999999999", "reference_unverified", True, id="unknown-ref"),
        pytest.param(SenderHints(email="nobody@example.test"), None, "none", True, id="nothing"),
        pytest.param(
            SenderHints(customer_ref="999999999", email="camille.durand@example.test"),
            "100000001", "email", True, id="unknown-ref-but-known-email",
        ),
    ],
)  # fmt: skip
def test_identify(hints: SenderHints, ref: str | None, method: str, holder: bool) -> None:
    result = identify_customer(hints, DIRECTORY, POLICY)
    assert (result.customer_ref, result.method, result.sender_is_holder) == (ref, method, holder)
    assert result.reason
    assert result.key == (f"ref:{ref}" if ref else None)


def test_fold_name() -> None:
    assert fold_name("  Éloïse ", "D'Ormesson-Lévêque") == "eloise d ormesson leveque"


@given(st.builds(SenderHints, first_name=st.text(max_size=30), last_name=st.text(max_size=30)))
def test_never_raises_and_never_invents_a_customer(hints: SenderHints) -> None:
    result = identify_customer(hints, DIRECTORY, POLICY)
    assert result.customer_ref is None or result.customer_ref in {d.customer_ref for d in DIRECTORY}


_HINTS = st.builds(
    SenderHints,
    customer_ref=st.sampled_from((None, "999999999", *(e.customer_ref for e in DIRECTORY))),
    email=st.sampled_from((None, "nobody@example.test", *(e.email for e in DIRECTORY if e.email))),
    mobile=st.sampled_from((None, *(e.mobile for e in DIRECTORY if e.mobile))),
    first_name=st.sampled_from((None, "Jean", "Inès", "Camille", "Maître")),
    last_name=st.sampled_from((None, "Petit", "Bernard", "Durand", "Lefebvre")),
    postal_address=st.one_of(
        st.none(),
        st.builds(
            _address,
            st.sampled_from(("1 rue de Rome", "40 av. Felix Faure", "2 rue Neuve")),
            st.sampled_from(("13001", "69003", "57000", "75001")),
        ),
    ),
)


@given(_HINTS, st.permutations(DIRECTORY))
def test_a_batch_index_identifies_as_the_whole_directory_does(
    hints: SenderHints, directory: list[DirectoryEntry]
) -> None:
    """Each contact of a batch is only compared with the accounts sharing one of its hints."""
    index = CandidateIndex(directory)
    assert index.identify(hints, POLICY) == identify_customer(hints, directory, POLICY)
    assert all(entry in directory for entry in index.of(hints))
