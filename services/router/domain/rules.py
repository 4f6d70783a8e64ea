"""The qualification rules as validated, frozen data (STYLE rule 3, procedure 4.6, 5.1.4).

Operations staff tune the YAML files under ``services/router/rules/``; these
models check them at start-up and say which entry is wrong. Nothing here does
I/O: :mod:`services.router.rules_loader` reads the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.dossiers import Kind, Urgency
from schemas.topics import SERVICE_QUEUES
from services.router.domain.cues import CompiledCue, compile_phrase
from services.router.domain.documents import Document
from services.router.domain.matching import CompiledLexicon, Scanner, vocabulary_of
from services.router.domain.speller import Speller
from services.router.domain.spelling import MISSPELLINGS
from services.router.domain.text import WordForms, fold

__all__ = [
    "DUNNING_BLOCKING_CODES",
    "REQUIRED_TYPE_CODES",
    "SENSITIVE_CODES",
    "CompiledRules",
    "ComplaintRules",
    "Cue",
    "Dictionary",
    "DossierType",
    "EscalationRules",
    "Lexicon",
    "PerimeterRules",
    "RuleSet",
    "SensitiveCode",
    "SensitiveRules",
    "UrgencyRules",
]

SensitiveCode = Literal[
    "juridique", "defenseur_association", "image", "rgpd", "plainte", "sinistre", "collectivite"
]
SENSITIVE_CODES: tuple[SensitiveCode, ...] = (
    "juridique",
    "defenseur_association",
    "image",
    "rgpd",
    "plainte",
    "sinistre",
    "collectivite",
)
"""The sensitive-mail categories of procedure 5.1.4, in the procedure's order."""

REQUIRED_TYPE_CODES: tuple[str, ...] = (
    "FACTURE", "REGLEMENT", "DEGREVEMENT", "RDR", "FAC", "ICT", "FSL", "ABONNEMENT",
    "RESILIATION", "MUTATION", "MENSUALISATION", "INDEX", "COMPTEUR", "FUITE", "QUALITE_EAU",
    "PRESSION", "BRANCHEMENT", "ASSAINISSEMENT", "COORDONNEES", "INFO",
)  # fmt: skip
"""Dossier types downstream consumers rely on; the dictionary may add more."""

DUNNING_BLOCKING_CODES: tuple[str, ...] = ("FACTURE", "REGLEMENT", "DEGREVEMENT", "RDR")
"""Types whose opening blocks dunning until closure (procedure 4.13, 5.1.7.1)."""


def _known_service_queue(value: str) -> str:
    if value not in SERVICE_QUEUES:
        raise ValueError(
            f"unknown service queue {value!r}; expected one of {', '.join(SERVICE_QUEUES)}"
        )
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Cue(_Frozen):
    """A weighted cue phrase: ``"mise en demeure"``, ``"contest*"``, ``"fuite .. compteur"``.

    In YAML a cue is either a bare string (default weight) or a mapping with
    ``phrase`` and optional ``weight``, ``negatable`` (false for topic words
    that still name the subject when denied: "je n'ai pas reçu ma facture"),
    and ``kind`` (a dictionary cue that makes the request a réclamation or a
    demande, procedure 4.13).
    """

    phrase: str = Field(min_length=1, max_length=200)
    weight: int = Field(default=2, ge=1, le=10)
    negatable: bool | None = None
    kind: Kind | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"phrase": value} if isinstance(value, str) else value

    @field_validator("phrase")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_phrase(value)
        return value


class Lexicon(_Frozen):
    """Weighted cues, masking phrases and the score a lexicon needs to fire.

    ``exclude`` phrases hide the cues they overlap ("fuite de données" is no
    water leak). ``count_hypothetical`` and ``count_risk`` say whether "en cas
    de …" and "risque de …" mentions count; negated cues never count unless the
    cue says ``negatable: false``.
    """

    cues: tuple[Cue, ...] = ()
    exclude: tuple[str, ...] = ()
    threshold: float = Field(default=2, gt=0)
    negatable: bool = True
    count_hypothetical: bool = False
    count_risk: bool = True

    @field_validator("cues")
    @classmethod
    def _unique(cls, cues: tuple[Cue, ...]) -> tuple[Cue, ...]:
        seen: set[str] = set()
        for cue in cues:
            key = fold(" ".join(cue.phrase.split()))
            if key in seen:
                raise ValueError(f"cue {cue.phrase!r} is listed twice")
            seen.add(key)
        return cues

    @field_validator("exclude")
    @classmethod
    def _exclusions_compile(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        for phrase in phrases:
            compile_phrase(phrase)
        return phrases

    def compile(self, name: str) -> CompiledLexicon:
        """Compile this lexicon for matching under ``name`` (used in reasons)."""
        cues = tuple(
            CompiledCue(
                phrase=cue.phrase,
                elements=compile_phrase(cue.phrase),
                weight=cue.weight,
                negatable=self.negatable if cue.negatable is None else cue.negatable,
                kind=cue.kind,
            )
            for cue in self.cues
        )
        return CompiledLexicon(
            name=name,
            cues=cues,
            exclude=tuple(compile_phrase(p) for p in self.exclude),
            threshold=self.threshold,
            count_hypothetical=self.count_hypothetical,
            count_risk=self.count_risk,
        )


class DossierType(_Frozen):
    """One entry of the "Dictionnaire national d'enregistrement des demandes" (4.6, 4.13).

    ``requires_complaint``: the type only applies to a réclamation (FAC, 4.9).
    ``max_urgency``: urgency cues cannot raise the type above it (a dégrèvement
    is asked for once the leak is repaired).
    """

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,31}$")
    label: str = Field(min_length=1)
    kind: Kind
    service: str
    needs_field_work: bool
    blocks_dunning: bool
    urgency: Urgency
    requires_complaint: bool = False
    max_urgency: Urgency | None = None
    lexicon: Lexicon = Lexicon(negatable=False)

    @model_validator(mode="before")
    @classmethod
    def _topic_words_not_negatable(cls, value: Any) -> Any:
        # "je n'ai pas reçu ma facture" is still about a bill: dictionary cues are
        # topic words, negation only matters for cues marked negatable (anomalies).
        if isinstance(value, dict) and isinstance(value.get("lexicon"), dict):
            value = {**value, "lexicon": {"negatable": False, **value["lexicon"]}}
        return value

    @field_validator("service")
    @classmethod
    def _known_queue(cls, value: str) -> str:
        return _known_service_queue(value)


class Dictionary(_Frozen):
    """The request dictionary: every dossier type, the fallback type and the score to reach."""

    title: str = "Dictionnaire national d'enregistrement des demandes"
    fallback: str = "INFO"
    min_score: float = Field(default=2, gt=0)
    subject_bonus: float = Field(default=1, ge=0)
    max_text_chars: int = Field(default=100_000, ge=1_000)
    types: tuple[DossierType, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Dictionary:
        codes = [t.code for t in self.types]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"dossier type(s) listed twice: {', '.join(duplicates)}")
        missing = [c for c in REQUIRED_TYPE_CODES if c not in codes]
        if missing:
            raise ValueError(f"dossier type(s) missing from the dictionary: {', '.join(missing)}")
        if self.fallback not in codes:
            raise ValueError(f"fallback type {self.fallback!r} is not in the dictionary")
        for entry in self.types:
            if entry.code in DUNNING_BLOCKING_CODES and not entry.blocks_dunning:
                raise ValueError(
                    f"dossier type {entry.code} must block dunning (procedure 4.13, 5.1.7.1)"
                )
        return self

    def get(self, code: str) -> DossierType:
        """Return the dossier type ``code``; ``KeyError`` if the dictionary has no such code."""
        for entry in self.types:
            if entry.code == code:
                return entry
        raise KeyError(code)


class SensitiveRules(_Frozen):
    """The sensitive-mail lexicon (5.1.4): one lexicon per category code, all seven present."""

    categories: Mapping[SensitiveCode, Lexicon]

    @field_validator("categories")
    @classmethod
    def _all_categories(
        cls, value: Mapping[SensitiveCode, Lexicon]
    ) -> Mapping[SensitiveCode, Lexicon]:
        missing = [c for c in SENSITIVE_CODES if c not in value]
        if missing:
            raise ValueError(f"sensitive categories missing: {', '.join(missing)}")
        return value


class UrgencyRules(_Frozen):
    """Cues of urgent (within the hour) and prioritaire (same day) requests (4.7, 5.1.6.2).

    ``resolved`` cues ("réparée hier", "lors des pluies du 14") mark a sentence
    as telling a past, settled event: urgency cues in that sentence do not count.
    ``queue``: where an urgent request goes first (it needs an intervention, 5.1.6.2).
    """

    urgent: Lexicon
    prioritaire: Lexicon
    resolved: Lexicon = Lexicon()
    queue: str = "field_ops"

    @field_validator("queue")
    @classmethod
    def _known_queue(cls, value: str) -> str:
        return _known_service_queue(value)


class ComplaintRules(_Frozen):
    """Cues of dissatisfaction, contestation or a reported anomaly: a réclamation (4.13).

    ``implied_by_sensitive``: sensitive categories that express dissatisfaction
    by themselves (threat to sue, to go to the press, to a mediator).
    """

    lexicon: Lexicon
    implied_by_sensitive: tuple[SensitiveCode, ...] = ()


class PerimeterRules(_Frozen):
    """Cues of requests outside the water/sanitation service (5.1.2) and of the service itself."""

    out_of_perimeter: Lexicon
    water_service: Lexicon


class EscalationRules(_Frozen):
    """Escalations to the customer-relations director: an RDR dossier (4.9 NB)."""

    rdr_code: str = "RDR"
    tsa_boxes: tuple[str, ...] = ("60002",)
    lexicon: Lexicon

    @field_validator("tsa_boxes")
    @classmethod
    def _boxes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for box in value:
            if not (len(box) == 5 and box.isdigit()):
                raise ValueError(f"TSA box {box!r} is not five digits")
        return value


class CancellationRules(_Frozen):
    """Cues of a customer cancelling a request still open (5.1.7.2 a)."""

    lexicon: Lexicon = Lexicon()


class CompiledRules:
    """Every lexicon of a rule set compiled once, plus the speller built from their words."""

    def __init__(self, rules: RuleSet) -> None:
        self.types = tuple((t, t.lexicon.compile(f"type {t.code}")) for t in rules.dictionary.types)
        self.sensitive = tuple(
            (code, rules.sensitive.categories[code].compile(f"sensible/{code}"))
            for code in SENSITIVE_CODES
        )
        self.urgent = rules.urgency.urgent.compile("urgence/urgent")
        self.prioritaire = rules.urgency.prioritaire.compile("urgence/prioritaire")
        self.resolved = rules.urgency.resolved.compile("urgence passée")
        self.complaint = rules.complaint.lexicon.compile("réclamation")
        self.out_of_perimeter = rules.perimeter.out_of_perimeter.compile("hors périmètre")
        self.water_service = rules.perimeter.water_service.compile("service de l'eau")
        self.escalation = rules.escalation.lexicon.compile("escalade RDR")
        self.cancellation = rules.cancellation.lexicon.compile("annulation")
        everything = [lex for _, lex in self.types] + [lex for _, lex in self.sensitive]
        everything += [self.urgent, self.prioritaire, self.complaint, self.escalation]
        everything += [self.cancellation]
        everything += [self.resolved, self.out_of_perimeter, self.water_service]
        self.speller = Speller(vocabulary_of(everything))
        self.scanner = Scanner(everything)
        self.spelling: Mapping[str, str] = {**MISSPELLINGS, **rules.spelling}
        self.forms = WordForms(self.spelling, self.speller.correct)

    def read(self, text: str) -> Document:
        """Tokenise ``text`` with this rule set's spelling table and speller (memoised per word)."""
        return Document.parse(text, forms=self.forms)


class RuleSet(_Frozen):
    """All qualification rules, validated together; ``compiled`` is built once per rule set."""

    version: str = "1"
    dictionary: Dictionary
    sensitive: SensitiveRules
    urgency: UrgencyRules
    complaint: ComplaintRules
    perimeter: PerimeterRules
    escalation: EscalationRules
    cancellation: CancellationRules = CancellationRules()
    spelling: Mapping[str, str] = {}

    @field_validator("spelling")
    @classmethod
    def _folded(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        return {fold(k).strip(): fold(v).strip() for k, v in value.items()}

    @model_validator(mode="after")
    def _rdr_known(self) -> RuleSet:
        codes = {t.code for t in self.dictionary.types}
        if self.escalation.rdr_code not in codes:
            raise ValueError(
                f"escalation type {self.escalation.rdr_code!r} is not in the dictionary"
            )
        return self

    @cached_property
    def compiled(self) -> CompiledRules:
        """The compiled lexicons, built on first use and kept with this frozen rule set."""
        return CompiledRules(self)
