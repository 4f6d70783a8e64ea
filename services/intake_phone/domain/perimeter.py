"""Which assembled calls are customer contacts to route (procedure 4.1, 4.2, 5.1.2).

"Les demandes clients ne concernant pas le périmètre SUEZ ne sont pas
enregistrées dans le SI Clientèle" (5.1.2), and internal requests are never a
customer contact (4.2). A call out of the perimeter is counted by its reason
and not routed. The rules, first match wins:

=======================  =====  ===============================================
reason                   in?    when
=======================  =====  ===============================================
``outbound_call``        no     we called out (a call back is an outbound
                                contact, traced elsewhere, not a new request)
``internal_call``        no     the platform flags it internal, or the caller
                                is one of our own numbers or matches an
                                internal prefix (extensions, our DID range)
``not_service_number``   no     the dialled number is known and is not one of
                                ``own_numbers`` (a line this service does not
                                serve); skipped when ``own_numbers`` is empty
``wrong_number``         no     the agent's wrap-up code says out of
                                perimeter / wrong number
``answered``             yes    an agent answered
``wrapped_up``           yes    not answered, but an agent qualified it
``voicemail``            yes    the caller left a message: a request to call
                                back
``abandoned_in_ivr``     no     never answered after at least one SVI choice
                                (hung up in the SVI or the queue behind it)
``unanswered``           no     hung up before any answer (queue, ringing) or
                                never reached an agent
=======================  =====  ===============================================

A call closed by the max-open timeout follows the same rules: answered, it is
routed; never answered, it is counted as unanswered. A hidden caller does not
change anything: the agent identifies the customer during the call.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, NamedTuple

from services.intake_phone.domain.assembly import CallState, facts
from services.intake_phone.domain.numbers import to_e164

__all__ = ["DEFAULT_OUT_OF_PERIMETER_CODES", "PerimeterDecision", "perimeter"]

DEFAULT_OUT_OF_PERIMETER_CODES: Final = frozenset(
    {"HORS_PERIMETRE", "HORS_PERIMETRE_SUEZ", "FAUX_NUMERO", "ERREUR_NUMERO", "WRONG_NUMBER"}
)
"""Wrap-up codes meaning "not for us"; operations tune the real list as data."""


class PerimeterDecision(NamedTuple):
    """Whether a call is routed, and the stable reason code (a metric label)."""

    in_perimeter: bool
    reason: str


def _canonical(number: str) -> str:
    return to_e164(number) or number.strip()


def perimeter(
    state: CallState,
    own_numbers: Collection[str],
    internal_prefixes: Collection[str],
    *,
    out_of_perimeter_codes: Collection[str] = DEFAULT_OUT_OF_PERIMETER_CODES,
) -> PerimeterDecision:
    """Decide whether an assembled call is a customer contact to route, with its reason.

    Rule of procedure 5.1.2 (requests outside the perimeter are not recorded)
    and 4.2 (internal calls are not customer contacts), detailed in the module
    docstring. ``own_numbers`` are the service lines (any notation),
    ``internal_prefixes`` are prefixes of internal callers (E.164 or raw
    extension), ``out_of_perimeter_codes`` the wrap-up codes meaning "not
    for us" (compared case-insensitively, each ``,``-separated tag counts).
    """
    found = facts(state)
    if found is None:
        return PerimeterDecision(False, "unanswered")
    own = {_canonical(number) for number in own_numbers}
    if found.direction == "outbound":
        return PerimeterDecision(False, "outbound_call")
    caller = found.caller
    if (
        found.internal
        or (caller is not None and caller in own)
        or (caller is not None and any(caller.startswith(p) for p in internal_prefixes if p))
    ):
        return PerimeterDecision(False, "internal_call")
    if own and found.called is not None and found.called not in own:
        return PerimeterDecision(False, "not_service_number")
    codes = {code.strip().upper() for code in out_of_perimeter_codes} - {""}
    tags = {tag.strip().upper() for tag in (found.wrap_up_code or "").split(",")}
    if tags & codes:
        return PerimeterDecision(False, "wrong_number")
    if found.answered:
        return PerimeterDecision(True, "answered")
    if found.wrap_up_code or found.wrap_up_note:
        return PerimeterDecision(True, "wrapped_up")
    if found.voicemail:
        return PerimeterDecision(True, "voicemail")
    if found.ivr_path:
        return PerimeterDecision(False, "abandoned_in_ivr")
    return PerimeterDecision(False, "unanswered")
