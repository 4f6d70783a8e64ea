"""Qualification of one contact: dossier type, kind, urgency, sensitivity, perimeter, queue.

A pure function over the customer's words and the validated rule set
(procedure 4.6, 4.7, 4.9, 4.13, 5.1.2, 5.1.4). Every decision carries its
reasons, quoting the customer's words that triggered it (STYLE rule 2); no
match is a result (``INFO`` / demande / normale), never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from services.router.domain.documents import Document
from services.router.domain.matching import LexiconHit
from services.router.domain.rules import CompiledRules, DossierType, RuleSet
from services.router.domain.text import strip_quoted

__all__ = ["Classification", "classify"]

Kind = Literal["demande", "reclamation"]
Urgency = Literal["urgent", "prioritaire", "normale"]
Hits = Mapping[str, LexiconHit]
_URGENCY_RANK: dict[Urgency, int] = {"normale": 0, "prioritaire": 1, "urgent": 2}
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|tr|fw|fwd)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Classification:
    """How a contact is qualified and where it goes, with the reasons for each decision.

    ``service`` is the queue the dossier goes to: ``perimeter_review`` when out
    of perimeter (5.1.2); the urgent queue (``field_ops``, ``urgency.yaml``)
    when urgent (4.7, 5.1.6.2: an intervention within the hour); ``escalations``
    for RDR (4.9); ``sensitive_mail`` when sensitive (5.1.4); else the dossier
    type's owner. ``also_notify`` lists the other queues the contact concerns:
    the owner and the sensitive-mail team of an urgent contact, the owner of a
    same-day (prioritaire) sensitive one.
    """

    kind: Kind
    dossier_type: str
    service: str
    urgency: Urgency
    sensitive: tuple[str, ...]
    in_perimeter: bool
    needs_field_work: bool
    blocks_dunning: bool
    reasons: tuple[str, ...]
    label: str = ""
    also_notify: tuple[str, ...] = ()
    cancellation: bool = False

    def as_dict(self) -> dict[str, object]:
        """The JSON-able form printed by ``aiguillage classify --json``."""
        return {
            "kind": self.kind,
            "sensitive": list(self.sensitive),
            "urgency": self.urgency,
            "dossier_type": self.dossier_type,
            "label": self.label,
            "in_perimeter": self.in_perimeter,
            "service": self.service,
            "also_notify": list(self.also_notify),
            "cancellation": self.cancellation,
            "needs_field_work": self.needs_field_work,
            "blocks_dunning": self.blocks_dunning,
            "reasons": list(self.reasons),
        }


class _Scored(NamedTuple):
    entry: DossierType
    hit: LexiconHit
    score: float


def _score_types(
    compiled: CompiledRules, doc: Document, hits: Hits, subject_end: int, bonus: float
) -> list[_Scored]:
    scored: list[_Scored] = []
    for entry, lexicon in compiled.types:
        hit = hits[lexicon.name]
        in_subject = bool(hit.counted) and any(
            doc.tokens[m.start].start < subject_end for m in hit.counted
        )
        scored.append(_Scored(entry, hit, hit.score + (bonus if in_subject else 0)))
    return scored


def _choose_type(
    rules: RuleSet, scored: list[_Scored], complaint: bool, reasons: list[str]
) -> DossierType:
    """Best-scoring eligible type, earliest mention on ties (4.6); the fallback when none scores."""
    eligible = [s for s in scored if complaint or not s.entry.requires_complaint]
    order = {s.entry.code: i for i, s in enumerate(scored)}
    eligible.sort(key=lambda s: (-s.score, s.hit.first, order[s.entry.code]))
    best = eligible[0] if eligible else None
    if best is None or best.score < rules.dictionary.min_score:
        reasons.append(f"aucun type reconnu: {rules.dictionary.fallback} par défaut (4.6)")
        return rules.dictionary.get(rules.dictionary.fallback)
    reasons.append(f"type {best.entry.code}: {best.hit.quotes()}")
    return best.entry


def _kind(
    entry: DossierType,
    hit: LexiconHit | None,
    complaint: LexiconHit,
    implied: Sequence[str],
    reasons: list[str],
) -> Kind:
    """Réclamation on dissatisfaction, contestation or a reported anomaly (4.13), else default."""
    if complaint.fired:
        reasons.append(f"réclamation (4.13): {complaint.quotes()}")
        return "reclamation"
    if implied:
        reasons.append(f"réclamation (4.13): courrier sensible {', '.join(implied)}")
        return "reclamation"
    cue_kinds = [m for m in (hit.counted if hit else ()) if m.cue.kind is not None]
    anomalies = [m for m in cue_kinds if m.cue.kind == "reclamation"]
    if anomalies:
        quoted = ", ".join(dict.fromkeys(f"« {m.quote} »" for m in anomalies))
        reasons.append(f"réclamation (4.13, anomalie signalée): {quoted}")
        return "reclamation"
    if cue_kinds:
        quoted = ", ".join(dict.fromkeys(f"« {m.quote} »" for m in cue_kinds))
        reasons.append(f"demande: {quoted}")
        return "demande"
    reasons.append(f"{entry.kind}: qualification par défaut du type {entry.code} (4.13)")
    return entry.kind


def _urgency(
    compiled: CompiledRules,
    doc: Document,
    hits: Hits,
    headings: set[int],
    entry: DossierType,
    reasons: list[str],
) -> Urgency:
    """Urgent (danger, within the hour) or prioritaire (same day), else the type's default (4.7).

    A sentence telling a settled past event does not count; nor does a heading
    (subject, "Objet :") that only names an event the body tells as past.
    """
    past = {doc.tokens[m.start].sentence for m in hits[compiled.resolved.name].counted}
    level: Urgency = entry.urgency
    for name, lexicon in (("urgent", compiled.urgent), ("prioritaire", compiled.prioritaire)):
        hit = hits[lexicon.name]
        stale = [m for m in hit.counted if doc.tokens[m.start].sentence in past]
        if stale:
            stale += [m for m in hit.counted if doc.tokens[m.start].sentence in headings]
        current = [m for m in hit.counted if m not in stale]
        if stale:
            quoted = ", ".join(dict.fromkeys(f"« {m.quote} »" for m in stale))
            reasons.append(f"{name} écarté, événement passé: {quoted}")
        score = sum(m.cue.weight for m in {m.cue.phrase: m for m in current}.values())
        if score >= lexicon.threshold:
            quoted = ", ".join(dict.fromkeys(f"« {m.quote} »" for m in current))
            reasons.append(f"{name} (4.7): {quoted}")
            level = "urgent" if name == "urgent" else "prioritaire"
            break
        _ignored(hit, reasons)
    if entry.max_urgency is not None and _URGENCY_RANK[level] > _URGENCY_RANK[entry.max_urgency]:
        reasons.append(f"urgence plafonnée à {entry.max_urgency} pour le type {entry.code}")
        level = entry.max_urgency
    return level


def _headings(doc: Document, subject_end: int) -> set[int]:
    """Sentence numbers of the subject line and of letters' "Objet :" lines."""
    headings = {t.sentence for t in doc.tokens if t.start < subject_end}
    previous = -1
    for token in doc.tokens:
        if token.sentence != previous and token.word == "objet":
            headings.add(token.sentence)
        previous = token.sentence
    return headings


def _ignored(hit: LexiconHit, reasons: list[str]) -> None:
    labels = {"negated": "négation", "hypothetical": "hypothèse", "risk": "risque"}
    for match in hit.ignored:
        reasons.append(
            f"non retenu {hit.name} ({labels.get(match.polarity, match.polarity)}): "
            f"« {match.quote} »"
        )


def _read(text: str, compiled: CompiledRules) -> tuple[Document, Hits]:
    doc = compiled.read(text)
    return doc, compiled.scanner.scan(doc)


def classify(
    *, subject: str | None, text: str, channel: str, tsa_box: str | None, rules: RuleSet
) -> Classification:
    """Qualify a contact from its subject and text (procedure 4.6, 4.7, 4.9, 4.13, 5.1.2, 5.1.4).

    Only the customer's own words count: quoted earlier replies are removed
    first. The contact is out of perimeter (5.1.2) when non-water cues outweigh
    the water-service ones; a TSA 60002 letter or an "autres recours amiables"
    escalation is an RDR dossier (4.9 NB); otherwise the dictionary type with
    the best cue score wins (4.6). Kind follows 4.13, urgency 4.7, sensitive
    categories 5.1.4. ``channel`` is part of the contract for rules that depend
    on it; none does today. No match yields the fallback type with a reason,
    never an exception.
    """
    compiled = rules.compiled
    reasons: list[str] = []
    limit = rules.dictionary.max_text_chars
    if len(text) > limit:
        reasons.append(f"texte tronqué: {limit} premiers caractères lus sur {len(text)}")
        text = text[:limit]
    body = strip_quoted(text)
    clean_subject = _REPLY_PREFIX.sub("", subject or "").strip()
    is_reply = bool(subject) and clean_subject != (subject or "").strip()
    prefix = f"{clean_subject}\n\n" if clean_subject else ""
    # the subject helps find the type; a reply's subject ("RE: …") is ours, not the customer's
    doc_all, hits_all = _read(prefix + body, compiled)
    doc, hits = _read(body, compiled) if is_reply else (doc_all, hits_all)

    complaint = hits[compiled.complaint.name]
    bonus = rules.dictionary.subject_bonus
    scored = _score_types(compiled, doc_all, hits_all, len(prefix), bonus)
    best_score = max((s.score for s in scored), default=0.0)

    out = hits_all[compiled.out_of_perimeter.name]
    water = hits_all[compiled.water_service.name]
    rdr_box = tsa_box is not None and tsa_box in rules.escalation.tsa_boxes
    escalation = hits_all[compiled.escalation.name]
    in_perimeter = rdr_box or not (out.fired and out.score > best_score + water.score)
    if not in_perimeter:
        reasons.append(f"hors périmètre (5.1.2): {out.quotes()}")
        fallback = rules.dictionary.get(rules.dictionary.fallback)
        return Classification(
            kind="demande",
            dossier_type=fallback.code,
            service="perimeter_review",
            urgency="normale",
            sensitive=(),
            in_perimeter=False,
            needs_field_work=False,
            blocks_dunning=False,
            reasons=tuple(reasons),
            label=fallback.label,
        )

    if rdr_box or escalation.fired:
        entry = rules.dictionary.get(rules.escalation.rdr_code)
        why = f"boîte TSA {tsa_box}" if rdr_box else escalation.quotes()
        reasons.append(f"type {entry.code} (4.9 NB, escalade): {why}")
        chosen_hit: LexiconHit | None = None
    else:
        entry = _choose_type(rules, scored, complaint.fired, reasons)
        chosen_hit = next((s.hit for s in scored if s.entry.code == entry.code), None)

    sensitive: list[str] = []
    sensitive_reasons: list[str] = []
    for code, lexicon in compiled.sensitive:
        hit = hits[lexicon.name]
        if hit.fired:
            sensitive.append(code)
            sensitive_reasons.append(f"{hit.name}: {hit.quotes()}")
        elif hit.ignored:
            _ignored(hit, sensitive_reasons)

    implied = [c for c in sensitive if c in rules.complaint.implied_by_sensitive]
    kind = _kind(entry, chosen_hit, complaint, implied, reasons)
    headings = _headings(doc, len(prefix) if doc is doc_all else 0)
    urgency = _urgency(compiled, doc, hits, headings, entry, reasons)
    reasons.extend(sensitive_reasons)

    service, also = _route(entry, urgency, bool(sensitive), rules.urgency.queue)
    for queue in also:
        reasons.append(f"à signaler aussi à {queue}")
    cancelling = hits[compiled.cancellation.name]
    if cancelling.fired:
        reasons.append(f"annulation de la demande (5.1.7.2 a): {cancelling.quotes()}")
    return Classification(
        kind=kind,
        dossier_type=entry.code,
        service=service,
        urgency=urgency,
        sensitive=tuple(sorted(sensitive)),
        in_perimeter=True,
        needs_field_work=entry.needs_field_work or urgency != "normale",
        blocks_dunning=entry.blocks_dunning,
        reasons=tuple(reasons),
        label=entry.label,
        also_notify=also,
        cancellation=cancelling.fired,
    )


def _route(
    entry: DossierType, urgency: Urgency, sensitive: bool, urgent_queue: str
) -> tuple[str, tuple[str, ...]]:
    """Queue of the dossier and queues to notify too.

    Urgent first (4.7, 5.1.6.2: an intervention within the hour), then RDR to
    its team (4.9), then sensitive mail (5.1.4), then the type's owner (4.10).
    A same-day (prioritaire) sensitive mail also notifies the owner.
    """
    owner = entry.service
    if urgency == "urgent":
        also = [owner] if owner != urgent_queue else []
        also += ["sensitive_mail"] if sensitive else []
        return urgent_queue, tuple(dict.fromkeys(q for q in also if q != urgent_queue))
    if owner == "escalations":
        return owner, ()
    if sensitive:
        return "sensitive_mail", (owner,) if urgency == "prioritaire" else ()
    return owner, ()
