"""Who is writing? Identify the customer account from the contact's hints (procedure 5.1.2).

Match by customer reference, then e-mail, then mobile, then name + postal
address (fuzzy, thresholds from settings). A sender who is not the account
holder is the contact's interlocutor, not the customer (5.1.2). No match is a
result ("manual identification"), never an error.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz

from schemas import SenderHints

__all__ = [
    "CandidateIndex",
    "DirectoryEntry",
    "Identification",
    "MatchPolicy",
    "fold_name",
    "identify_customer",
]

Method = Literal["reference", "reference_unverified", "email", "mobile", "name_address", "none"]


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One account of the customer directory, as the matcher needs it."""

    customer_ref: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile: str | None = None
    postcode: str | None = None
    address_line: str | None = None


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    """Fuzzy thresholds (0–100, rapidfuzz token-sort ratio on folded text)."""

    name_threshold: float = 88.0
    address_threshold: float = 80.0


@dataclass(frozen=True, slots=True)
class Identification:
    """The account a contact belongs to, how it was found, and whether the sender holds it."""

    customer_ref: str | None
    method: Method
    sender_is_holder: bool
    reason: str

    @property
    def identified(self) -> bool:
        """True when the contact is tied to an account."""
        return self.customer_ref is not None

    @property
    def key(self) -> str | None:
        """The serialisation key of the customer (one customer's contacts in order)."""
        return f"ref:{self.customer_ref}" if self.customer_ref else None


def fold_name(*parts: str | None) -> str:
    """Lower-case, accent-free, punctuation-free words of a name or address."""
    text = " ".join(part for part in parts if part)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.split())


def _sender_name(hints: SenderHints) -> str:
    return fold_name(hints.first_name, hints.last_name)


def _is_holder(hints: SenderHints, entry: DirectoryEntry, policy: MatchPolicy) -> bool:
    sender = _sender_name(hints)
    if not sender or not (entry.first_name or entry.last_name):
        return True  # nothing says otherwise
    holder = fold_name(entry.first_name, entry.last_name)
    return fuzz.token_sort_ratio(sender, holder) >= policy.name_threshold


def _unique(entries: Sequence[DirectoryEntry]) -> DirectoryEntry | None:
    refs = {entry.customer_ref for entry in entries}
    return entries[0] if len(refs) == 1 else None


def identify_customer(
    hints: SenderHints, candidates: Sequence[DirectoryEntry], policy: MatchPolicy
) -> Identification:
    """Identify the account of a contact among directory candidates (5.1.2).

    ``candidates`` are the directory entries sharing the contact's reference,
    e-mail, mobile or postcode (the repository fetches them). A stated
    reference the directory does not know still identifies the contact,
    flagged unverified, when nothing else matches.
    """
    if hints.customer_ref:
        by_ref = [c for c in candidates if c.customer_ref == hints.customer_ref]
        if by_ref:
            holder = _is_holder(hints, by_ref[0], policy)
            role = "titulaire" if holder else "interlocuteur non titulaire (5.1.2)"
            return Identification(
                hints.customer_ref, "reference", holder, f"référence client; {role}"
            )
    for method, value in (("email", hints.email), ("mobile", hints.mobile)):
        if not value:
            continue
        matches = [c for c in candidates if getattr(c, method) == value]
        entry = _unique(matches)
        if entry is not None:
            return Identification(entry.customer_ref, method, True, f"{method} connu de l'annuaire")  # type: ignore[arg-type]
    found = _by_name_and_address(hints, candidates, policy)
    if found is not None:
        return found
    if hints.customer_ref:
        return Identification(
            hints.customer_ref,
            "reference_unverified",
            True,
            "référence client absente de l'annuaire",
        )
    return Identification(None, "none", True, "aucune correspondance: identification manuelle")


def _by_name_and_address(
    hints: SenderHints, candidates: Sequence[DirectoryEntry], policy: MatchPolicy
) -> Identification | None:
    address = hints.postal_address
    sender = _sender_name(hints)
    if address is None or address.postcode is None or not sender:
        return None
    line = fold_name(*address.lines)
    scored = []
    for entry in candidates:
        if entry.postcode != address.postcode:
            continue
        name_score = fuzz.token_sort_ratio(sender, fold_name(entry.first_name, entry.last_name))
        address_score = (
            fuzz.token_sort_ratio(line, fold_name(entry.address_line))
            if line and entry.address_line
            else 100.0
        )
        if name_score >= policy.name_threshold and address_score >= policy.address_threshold:
            scored.append((name_score + address_score, entry))
    if not scored:
        return None
    scored.sort(key=lambda pair: pair[0], reverse=True)
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        return None  # homonyms at the same address: a person must decide
    entry = scored[0][1]
    return Identification(
        entry.customer_ref, "name_address", True, "nom et adresse (rapprochement)"
    )


class CandidateIndex:
    """A batch's directory candidates, indexed by what :func:`identify_customer` compares.

    The repository fetches the candidates of a whole batch at once (up to a few
    thousand accounts); each contact only needs the accounts sharing its
    reference, e-mail, mobile or postcode, which every rule of 5.1.2 requires.
    Handing each contact just those, in the batch's order, gives the same
    identification without comparing every contact with every account.
    """

    def __init__(self, candidates: Sequence[DirectoryEntry]) -> None:
        self._by: dict[tuple[str, str | None], list[int]] = {}
        self._entries = tuple(candidates)
        for position, entry in enumerate(self._entries):
            for field in ("customer_ref", "email", "mobile", "postcode"):
                self._by.setdefault((field, getattr(entry, field)), []).append(position)

    def of(self, hints: SenderHints) -> list[DirectoryEntry]:
        """The candidates ``hints`` could be identified with, in their original order."""
        wanted: list[tuple[str, str | None]] = []
        if hints.customer_ref:
            wanted.append(("customer_ref", hints.customer_ref))
        if hints.email:
            wanted.append(("email", hints.email))
        if hints.mobile:
            wanted.append(("mobile", hints.mobile))
        address = hints.postal_address
        if address is not None and address.postcode is not None:
            wanted.append(("postcode", address.postcode))
        positions = sorted({p for key in wanted for p in self._by.get(key, ())})
        return [self._entries[p] for p in positions]

    def identify(self, hints: SenderHints, policy: MatchPolicy) -> Identification:
        """:func:`identify_customer` of ``hints`` among the candidates that can match it."""
        return identify_customer(hints, self.of(hints), policy)
