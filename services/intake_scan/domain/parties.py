"""Who wrote the letter, from where, and about what (5.1.1 letters, 5.1.3.2 data on the letter).

A French letter opens with the sender's block (name, street lines, postcode
and city), then the recipient's block (here "Service Client TSA 50001 36400 La
Châtre"), the place-and-date line, the "Objet :" line, the body, a closing
formula and the signatory. Text layers drop the blank lines between blocks,
so the rules look at lines around a postcode rather than at paragraphs.
"""

from __future__ import annotations

import re

from schemas.intake import PostalAddress
from services.intake_scan.domain.facts import Found, PersonName

__all__ = ["find_sender", "find_signatory", "find_subject", "parse_person_name"]

_CIVILITIES = frozenset(
    {
        "m", "m.", "mr", "mr.", "mm", "mm.", "monsieur", "messieurs", "mme", "mme.", "mmes",
        "madame", "mesdames", "mlle", "mlle.", "mademoiselle", "dr", "dr.", "docteur", "me",
        "maître", "maitre", "et", "&",
    }
)  # fmt: skip
_PARTICLES = frozenset({"de", "du", "des", "d'", "le", "la", "van", "von", "di", "da", "del"})
_NOT_NAMES = frozenset(
    {
        "service", "services", "client", "clients", "clientèle", "clientele", "direction",
        "relation", "relations", "directeur", "directrice", "suez", "eau", "eaux", "objet",
        "tsa", "cedex", "rue", "avenue", "av", "boulevard", "bd", "chemin", "place", "allée",
        "allee", "impasse", "route", "quai", "cours", "bâtiment", "batiment", "résidence",
        "residence", "appartement", "lieu-dit", "lotissement", "hameau", "madame", "monsieur",
        "lettre", "recommandée", "recommandee", "copie", "pièce", "pièces", "jointe", "jointes",
        "référence", "reference", "facture", "cordialement", "salutations", "bonjour",
    }
)  # fmt: skip
_NAME_WORD = re.compile(r"(?:[dD]')?[^\W\d_]+(?:['-][^\W\d_]+)*\.?")
_MAX_NAME_CHARS = 60


def _is_caps(word: str) -> bool:
    letters = [char for char in word if char.isalpha()]
    return len(letters) >= 2 and all(char.isupper() for char in letters)


def parse_person_name(line: str) -> PersonName | None:
    """Read a person's name from one line, civility dropped (5.1.1: nom, prénom).

    "M. Jean-François DUPRÉ", "Marie-Claire Lefèvre", "DUPONT Anne", "Madame
    Martin". Words in capitals are the last name; otherwise the last word (with
    any particle before it: "de La Fontaine") is. Without a civility two words
    are needed, so that a city or a street is not taken for a name.
    """
    line = line.strip().rstrip(".,; ")
    if not line or len(line) > _MAX_NAME_CHARS or any(char in line for char in ":@/,()0123456789"):
        return None
    tokens = line.split(" ")
    civility = 0
    while civility < len(tokens) and tokens[civility].lower() in _CIVILITIES:
        civility += 1
    words = tokens[civility:]
    if not words or len(words) > 5 or (civility == 0 and len(words) < 2):
        return None
    for index, word in enumerate(words):
        if not _NAME_WORD.fullmatch(word) or word.lower().rstrip(".") in _NOT_NAMES:
            return None
        if word.lower() in _PARTICLES and index > 0:
            continue
        core = word[2:] if word[:2].lower() == "d'" else word
        if not core[:1].isupper() or (word.endswith(".") and len(word) > 2):
            return None
    if len(words) == 1:
        return PersonName(last_name=words[0])
    caps = [index for index, word in enumerate(words) if _is_caps(word)]
    if caps and len(caps) < len(words):
        last_index = caps
        # particles just before the capitalised last name belong to it ("de LA FONTAINE")
        while last_index[0] > 0 and words[last_index[0] - 1].lower() in _PARTICLES:
            last_index = [last_index[0] - 1, *last_index]
        last = " ".join(words[i] for i in last_index)
        first = " ".join(word for i, word in enumerate(words) if i not in last_index)
        return PersonName(last_name=last, first_name=first or None)
    split = next(
        (i for i in range(1, len(words)) if words[i].lower() in _PARTICLES), len(words) - 1
    )
    return PersonName(last_name=" ".join(words[split:]), first_name=" ".join(words[:split]))


_POSTCODE_LINE = re.compile(
    r"^(?:F-? ?)?(?P<postcode>(?:0[1-9]|[1-8][0-9]|9[0-8]) ?[0-9]{3})[ ]?-?[ ]"
    r"(?P<city>[^\W\d_][\w' -]{0,50})$"
)
_CITY_JOINERS = frozenset(
    {"sur", "sous", "en", "de", "du", "des", "la", "le", "les", "lès", "lez", "aux", "au", "et",
     "cedex"}
)  # fmt: skip
_MAX_CITY_WORDS = 6


def _looks_like_city(city: str) -> bool:
    words = [word for word in re.split(r"[ '-]", city) if word]
    if not words or len(words) > _MAX_CITY_WORDS:
        return False
    return all(
        word[0].isupper() or word.isdigit() or word.lower() in _CITY_JOINERS or len(word) <= 2
        for word in words
    )


_RECIPIENT = re.compile(
    r"\bT[ .]?S[ .]?A\b|service[s]? client|relations? client|\bdirect(?:ion|eur|rice)\b|\bsuez\b",
    re.I,
)
_LABELLED = re.compile(
    r"@|\bn°|\b(?:t[ée]l|tel|portable|mobile|fax|e-?mail|courriel|r[ée]f|objet)\b", re.I
)
_BLOCK_LINES = 5


def _block_above(lines: list[str], index: int) -> list[str]:
    block: list[str] = []
    for line in reversed(lines[max(0, index - _BLOCK_LINES) : index]):
        if not line or _POSTCODE_LINE.match(line) or _LABELLED.search(line):
            break
        block.insert(0, line)
    return block


def find_sender(lines: list[str]) -> tuple[Found[PersonName] | None, Found[PostalAddress] | None]:
    """Find the sender's name and postal address from the first address block (5.1.3.2).

    The sender's block is the first "postcode city" line whose block does not
    mention a TSA box or the utility's service (that block is the recipient).
    Its top line is the sender's name when it reads as one; the lines between
    it and the postcode are the street lines.
    """
    for index, line in enumerate(lines):
        match = _POSTCODE_LINE.match(line)
        if match is None or not _looks_like_city(match.group("city")):
            continue
        block = _block_above(lines, index)
        if _RECIPIENT.search(line) or any(_RECIPIENT.search(above) for above in block):
            continue
        name: Found[PersonName] | None = None
        for position, above in enumerate(block):
            person = parse_person_name(above)
            if person is not None:
                name = Found(person, "top line of the sender's address block")
                block = block[position + 1 :]
                break
        address = PostalAddress(
            lines=tuple(block[-4:]),
            postcode=match.group("postcode").replace(" ", ""),
            city=match.group("city").strip(" -"),
        )
        reason = "first 'postcode city' line outside the recipient's block"
        return name, Found(address, reason)
    return None, None


_SUBJECT = re.compile(r"^(?P<label>objet|obj\.|concerne)[ ]?[:.-][ ]?(?P<value>\S.*)$", re.I | re.M)
_MAX_SUBJECT = 1000


def find_subject(text: str) -> Found[str] | None:
    """Find the letter's "Objet :" line, the customer's own summary of the request (4.5)."""
    match = _SUBJECT.search(text)
    if match is None:
        return None
    label = "Concerne" if match.group("label").lower() == "concerne" else "Objet"
    return Found(match.group("value").strip()[:_MAX_SUBJECT], f"'{label} :' line")


_CLOSING = re.compile(
    r"salutations|sentiments|cordialement|consid[ée]ration|respectueusement|"
    r"agr[ée]er|bien [àa] vous|meilleures",
    re.I,
)
_SIGNATURE_LINES = 5


def find_signatory(lines: list[str]) -> Found[PersonName] | None:
    """Find who signed: the first name-like line after the closing formula (5.1.1 identity).

    Without a closing formula, the last name-like line among the letter's last
    three non-blank lines is taken.
    """
    closing = [index for index, line in enumerate(lines) if _CLOSING.search(line)]
    if closing:
        following = [line for line in lines[closing[-1] + 1 :] if line][:_SIGNATURE_LINES]
        for line in following:
            person = parse_person_name(line)
            if person is not None:
                return Found(person, "name line after the closing formula")
    tail = [line for line in lines if line][-3:]
    for line in reversed(tail):
        person = parse_person_name(line)
        if person is not None:
            return Found(person, "name line at the end of the letter")
    return None
