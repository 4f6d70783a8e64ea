"""The website's contact form, read from the mail it produces (procedure 5.1.1 "Les e-mails").

The form asks for Nom, Prénom, Adresse e-mail, Numéro de téléphone mobile,
Référence client (facultative), Adresse (facultative) and the message. Its mail
comes as text (``Nom : Dupont``, or the label on one line and the value on the
next) or as HTML (a table, read here through ``html_to_text`` as
``Nom<TAB>Dupont``, possibly a header row of labels over a row of values).
Rule: be liberal with spelling, accents, case, order, ``*`` and "(facultatif)"
(small typos are forgiven where a colon marks the label);
a mail is a form when at least three known fields are present, one of them an
identity field. Values are returned as written; ``identity`` normalises them.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["ContactForm", "extract_contact_form"]

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "last_name": ("nom", "nom de famille", "votre nom", "last name", "lastname", "surname"),
    "first_name": ("prenom", "votre prenom", "first name", "firstname", "prenoms"),
    "email": (
        "adresse e mail", "adresse email", "adresse mail", "adresse electronique", "e mail",
        "email", "mail", "courriel", "adresse courriel", "votre adresse e mail", "votre e mail",
        "votre email", "votre adresse email", "votre courriel",
    ),
    "mobile": (
        "numero de telephone mobile", "numero de mobile", "numero de portable", "telephone mobile",
        "telephone portable", "tel mobile", "tel portable", "mobile", "portable", "telephone",
        "tel", "numero de telephone", "n de telephone", "no de telephone", "votre telephone",
        "votre numero de telephone", "votre numero de telephone mobile", "gsm", "phone",
    ),
    "landline": (
        "telephone fixe", "tel fixe", "fixe", "telephone domicile", "tel domicile",
        "numero de telephone fixe", "telephone fixe facultatif",
    ),
    "customer_ref": (
        "reference client", "ref client", "votre reference client", "numero client",
        "numero de client", "n client", "no client", "n de client", "reference abonne",
        "numero d abonne", "n d abonne", "reference", "reference contrat", "numero de contrat",
    ),
    "address": (
        "adresse", "adresse postale", "adresse desservie", "votre adresse",
        "adresse du logement", "adresse de consommation", "adresse du point de service",
    ),
    "postcode": ("code postal", "cp"),
    "city": ("ville", "commune", "localite"),
    "subject": ("objet", "sujet", "motif", "objet de la demande", "objet de votre demande",
                "motif de contact", "motif de la demande", "type de demande", "categorie"),
    "message": ("message", "votre message", "demande", "votre demande", "commentaire",
                "commentaires", "question", "votre question", "texte", "contenu"),
    "ignored": ("civilite", "titre", "date", "date d envoi", "page", "formulaire", "site"),
}  # fmt: skip
_LABELS = {label: field for field, labels in _SYNONYMS.items() for label in labels}
_FUZZY_KEYS = tuple(label for label in _LABELS if len(label) >= 5)
_IDENTITY = frozenset({"last_name", "first_name", "email", "mobile", "landline", "customer_ref"})
_MULTILINE = frozenset({"message", "address"})
_MIN_FIELDS = 3

_OPTIONAL = re.compile(r"\((?:facultati(?:f|ve)|optionnel(?:le)?|obligatoire|requis)\)")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_LABEL_VALUE = re.compile(r"^[*_\s]*(?P<label>[^:：\t]{1,60}?)[*_\s]*[:：][*_]*\s*(?P<value>.*)$")
_FOOTER = re.compile(
    r"^(?:-{2,}\s*$|_{5,}\s*$|(?:ce|cet) (?:message|mail|courriel|e-?mail) a [ée]t[ée] envoy"
    r"|(?:message )?envoy[ée] (?:depuis|via|par) (?:le|la|notre) (?:formulaire|site|page)"
    r"|this (?:message|e-?mail) was sent)",
    re.IGNORECASE,
)
_PLACEHOLDERS = frozenset(
    {"non renseigne", "non renseignee", "aucun", "aucune", "neant", "n a", "na", "", "xx"}
)


@dataclass(frozen=True, slots=True)
class ContactForm:
    """The fields of one contact-form mail, as the customer typed them (procedure 5.1.1)."""

    last_name: str | None = None
    first_name: str | None = None
    email: str | None = None
    mobile: str | None = None
    landline: str | None = None
    customer_ref: str | None = None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    subject: str | None = None
    message: str = ""


def _normalise_label(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char)).lower()
    return _NOT_ALNUM.sub(" ", _OPTIONAL.sub(" ", bare)).strip()


@functools.lru_cache(maxsize=4096)
def _field_for(label: str, *, fuzzy: bool) -> str | None:
    if not label or len(label) > 60:
        return None
    key = _normalise_label(label)
    if key in _LABELS:
        return _LABELS[key]
    if fuzzy and len(key) >= 5:
        close = difflib.get_close_matches(key, _FUZZY_KEYS, n=1, cutoff=0.86)
        if close:
            return _LABELS[close[0]]
    return None


def _split_label(text: str) -> tuple[str, str] | None:
    match = _LABEL_VALUE.match(text)
    if match is None:
        return None
    field = _field_for(match.group("label"), fuzzy=True)
    return None if field is None else (field, match.group("value").strip())


def _bare_label(text: str) -> str | None:
    stripped = text.strip(" *_")
    colon = stripped.endswith((":", "："))
    stripped = stripped.strip(" *_:：")
    return _field_for(stripped, fuzzy=colon) if stripped else None


def _cells(line: str) -> list[tuple[str, str | None]]:
    cells = [cell.strip() for cell in line.split("\t")]
    found: list[tuple[str, str | None]] = []
    index = 0
    while index < len(cells):
        cell = cells[index]
        index += 1
        if not cell:
            continue
        pair = _split_label(cell)
        if pair is not None and pair[1]:
            found.append(pair)
            continue
        field = _bare_label(cell)
        if field is None:
            continue
        following = next((i for i in range(index, len(cells)) if cells[i]), None)
        if following is not None and _bare_label(cells[following]) is None:
            found.append((field, cells[following]))
            index = following + 1
        else:
            found.append((field, None))
    return found


class _Reader:
    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}
        self.current: str | None = None
        self.columns: list[str] = []

    def _labels(self, line: str) -> list[tuple[str, str | None]]:
        in_message = self.current == "message"
        if "\t" in line and not in_message:
            return _cells(line)
        pair = _split_label(line)
        if pair is not None:
            found: list[tuple[str, str | None]] = [(pair[0], pair[1] or None)]
        elif not in_message and (field := _bare_label(line)) is not None:
            found = [(field, None)]
        else:
            return []
        if in_message and any(field in self.values for field, _ in found):
            return []
        return found

    def feed(self, raw_line: str) -> bool:
        line = raw_line.strip()
        if line.startswith(">"):
            return True
        if _FOOTER.match(line):
            self.current = None
            return "message" not in self.values
        if self.columns and line:
            cells = [cell.strip() for cell in raw_line.split("\t")]
            for column, cell in zip(self.columns, cells, strict=False):
                if cell:
                    self.values[column] = [cell]
            self.columns = []
            return True
        found = self._labels(line)
        if found:
            for field, value in found:
                self.values.setdefault(field, [])
                if value is not None:
                    self.values[field] = [value]
            field, value = found[-1]
            if len(found) > 1 and all(each is None for _, each in found):
                self.columns = [name for name, _ in found]
                self.current = None
            else:
                self.current = field if value is None or field in _MULTILINE else None
            return True
        self._continue(raw_line.rstrip(), line)
        return True

    def _continue(self, raw_line: str, line: str) -> None:
        field = self.current
        if field is None:
            return
        if not line:
            if field == "message":
                self.values[field].append("")
            elif self.values.get(field):
                self.current = None
            return
        self.values[field].append(raw_line if field == "message" else line)
        if field not in _MULTILINE:
            self.current = None


def _value(values: dict[str, list[str]], field: str, sep: str = " ") -> str | None:
    text = sep.join(values.get(field, ())).strip()
    if field != "message":
        key = _normalise_label(text)
        if key in _PLACEHOLDERS or key.startswith("votre "):
            return None
    return text or None


def extract_contact_form(text: str) -> ContactForm | None:
    """Read the contact-form fields from a mail's text, or return None if it is not a form.

    Rule (procedure 5.1.1 "Les e-mails"; issue 4, "Parsing": text and HTML
    variants, liberal labels, any order, optional fields missing). Quoted lines
    (``>``) are ignored; the message runs until the next unseen label or a
    "sent from the website" footer.
    """
    reader = _Reader()
    for line in text.split("\n")[:5000]:
        if not reader.feed(line):
            break
    fields = {field for field in reader.values if field != "ignored"}
    if len(fields) < _MIN_FIELDS or not fields & _IDENTITY:
        return None
    values = reader.values
    return ContactForm(
        last_name=_value(values, "last_name"),
        first_name=_value(values, "first_name"),
        email=_value(values, "email"),
        mobile=_value(values, "mobile"),
        landline=_value(values, "landline"),
        customer_ref=_value(values, "customer_ref"),
        address=_value(values, "address", "\n"),
        postcode=_value(values, "postcode"),
        city=_value(values, "city"),
        subject=_value(values, "subject"),
        message=_value(values, "message", "\n") or "",
    )
