"""The automatic acknowledgement is loop-safe per RFC 3834 (procedure 4.12 NB, issue 4)."""

from __future__ import annotations

import pytest

from services.intake_mail.domain import (
    ParsedMail,
    acknowledgement_decision,
    automatic_reason,
    parse_mail,
)

OWN = ("service-client@eau.example.org", "@robots.eau.example.org")
CUSTOMER = b"From: Jeanne Martin <jeanne.martin@example.test>\r\n"


def _parsed(
    headers: bytes = b"", *, sender: bytes = CUSTOMER, body: bytes = b"Bonjour"
) -> ParsedMail:
    raw = (
        sender + b"To: service-client@eau.example.org\r\nSubject: x\r\n" + headers + b"\r\n" + body
    )
    return parse_mail(raw, max_bytes=100_000)


REPORT = (
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n'
)
REPORT_BODY = (
    b"--R\r\nContent-Type: text/plain\r\n\r\nEchec\r\n"
    b"--R\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--R--\r\n"
)
FORM = (
    "Nom : Martin\r\nPrénom : Jeanne\r\nE-mail : jeanne.martin@example.test\r\nMessage : x".encode()
)


@pytest.mark.parametrize(
    ("headers", "sender", "body", "reason"),
    [
        pytest.param(
            b"Auto-Submitted: auto-replied\r\n",
            CUSTOMER,
            b"x",
            "Auto-Submitted: auto-replied",
            id="auto-replied",
        ),
        pytest.param(
            b"Auto-Submitted: auto-generated; owner-email=x\r\n",
            CUSTOMER,
            b"x",
            "Auto-Submitted: auto-generated",
            id="auto-generated-with-params",
        ),
        pytest.param(
            b"Auto-Submitted: \r\n",
            CUSTOMER,
            b"x",
            "Auto-Submitted: present",
            id="auto-submitted-empty",
        ),
        pytest.param(b"X-Autoreply: yes\r\n", CUSTOMER, b"x", "x-autoreply", id="x-autoreply"),
        pytest.param(
            b"X-Autorespond: yes\r\n", CUSTOMER, b"x", "x-autorespond", id="x-autorespond"
        ),
        pytest.param(
            b"X-Auto-Response-Suppress: DR, OOF\r\n",
            CUSTOMER,
            b"x",
            "X-Auto-Response-Suppress",
            id="ms-suppress",
        ),
        pytest.param(
            b"Return-Path: <>\r\n", CUSTOMER, b"x", "empty Return-Path", id="null-return-path"
        ),
        pytest.param(REPORT, CUSTOMER, REPORT_BODY, "report", id="multipart-report"),
        pytest.param(
            b"",
            b"From: MAILER-DAEMON@mx.example.test\r\n",
            b"x",
            "mailer daemon",
            id="mailer-daemon",
        ),
        pytest.param(
            b"", b"From: postmaster@example.test\r\n", b"x", "mailer daemon", id="postmaster"
        ),
        pytest.param(
            b"X-Failed-Recipients: a@example.test\r\n",
            CUSTOMER,
            b"x",
            "X-Failed-Recipients",
            id="exim-bounce",
        ),
        pytest.param(
            b"List-Id: <usagers.example.org>\r\n", CUSTOMER, b"x", "list-id", id="list-id"
        ),
        pytest.param(
            b"List-Unsubscribe: <mailto:u@example.org>\r\n",
            CUSTOMER,
            b"x",
            "list-unsubscribe",
            id="list-unsubscribe",
        ),
        pytest.param(b"Precedence: bulk\r\n", CUSTOMER, b"x", "Precedence: bulk", id="bulk"),
        pytest.param(b"Precedence: JUNK\r\n", CUSTOMER, b"x", "Precedence: junk", id="junk"),
        pytest.param(b"Precedence: list\r\n", CUSTOMER, b"x", "Precedence: list", id="list"),
        pytest.param(
            b"",
            b"From: service-client@eau.example.org\r\n",
            b"x",
            "our own address",
            id="from-ourselves",
        ),
        pytest.param(
            b"",
            b"From: alerte@robots.eau.example.org\r\n",
            b"x",
            "our own address",
            id="from-our-domain",
        ),
        pytest.param(
            b"Reply-To: service-client@eau.example.org\r\n",
            CUSTOMER,
            b"x",
            "reply address is our own",
            id="reply-to-ourselves",
        ),
        pytest.param(
            b"X-Loop: service-client@eau.example.org\r\n", CUSTOMER, b"x", "X-Loop", id="x-loop"
        ),
        # an auto-responder that ignores RFC 3834's headers, answering our acknowledgement
        pytest.param(
            b"In-Reply-To: <mail-0123456789abcdef0123456789abcdef.ar@eau.example.org>\r\n",
            CUSTOMER,
            b"Merci, votre message a bien ete recu par notre service.",
            "reply to one of our acknowledgements",
            id="answer-to-our-acknowledgement",
        ),
        pytest.param(
            b"References: <a@x.test>\r\n <mail-0123456789ABCDEF0123456789abcdef.ar@eau.example.org>\r\n",
            CUSTOMER,
            b"x",
            "reply to one of our acknowledgements",
            id="our-acknowledgement-in-the-thread",
        ),
    ],
)
def test_no_acknowledgement(headers: bytes, sender: bytes, body: bytes, reason: str) -> None:
    decision = acknowledgement_decision(_parsed(headers, sender=sender, body=body), OWN)
    assert not decision.send
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("headers", "sender", "body", "recipient"),
    [
        pytest.param(b"", CUSTOMER, b"x", "jeanne.martin@example.test", id="plain-customer"),
        pytest.param(
            b"Auto-Submitted: no\r\n",
            CUSTOMER,
            b"x",
            "jeanne.martin@example.test",
            id="auto-submitted-no",
        ),
        pytest.param(
            b"Precedence: first-class\r\n",
            CUSTOMER,
            b"x",
            "jeanne.martin@example.test",
            id="other-precedence",
        ),
        pytest.param(
            b"Return-Path: <jeanne.martin@example.test>\r\n",
            CUSTOMER,
            b"x",
            "jeanne.martin@example.test",
            id="normal-return-path",
        ),
        pytest.param(
            b"Reply-To: jm@example.test\r\n", CUSTOMER, b"x", "jm@example.test", id="reply-to"
        ),
        pytest.param(
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"From: Site <service-client@eau.example.org>\r\n",
            FORM,
            "jeanne.martin@example.test",
            id="form-sent-by-our-site",
        ),
    ],
)
def test_acknowledgement_sent(headers: bytes, sender: bytes, body: bytes, recipient: str) -> None:
    decision = acknowledgement_decision(_parsed(headers, sender=sender, body=body), OWN)
    assert decision.send, decision.reason
    assert decision.recipient == recipient


SITE = b"From: Site <formulaire@site.example.test>\r\nContent-Type: text/plain; charset=utf-8\r\n"


@pytest.mark.parametrize(
    "marks",
    [
        b"Auto-Submitted: auto-generated\r\n",
        b"Precedence: bulk\r\n",
        b"X-Auto-Response-Suppress: All\r\n",
    ],
    ids=["auto-submitted", "precedence-bulk", "auto-response-suppress"],
)
def test_a_form_mailers_automatic_marks_do_not_silence_the_customers_acknowledgement(
    marks: bytes,
) -> None:
    # 4.12 NB: whoever writes through the contact form gets the acknowledgement; the
    # marks speak of the site's form mailer, and the acknowledgement goes to the
    # address the customer typed, not to the mailer.
    decision = acknowledgement_decision(_parsed(marks, sender=SITE, body=FORM), OWN)
    assert decision.send, decision.reason
    assert decision.recipient == "jeanne.martin@example.test"


@pytest.mark.parametrize(
    "marks",
    [
        b"Return-Path: <>\r\n",
        b"Auto-Submitted: auto-replied\r\n",
        b"X-Autoreply: yes\r\n",
        b"Precedence: auto_reply\r\n",
        b"List-Id: <clients.example.test>\r\n",
    ],
    ids=["bounce", "auto-replied", "x-autoreply", "precedence-auto-reply", "list"],
)
def test_an_auto_reply_bounce_or_list_looking_like_a_form_stays_unanswered(marks: bytes) -> None:
    # e.g. an out-of-office whose signature reads like a form (Nom, E-mail...): answering
    # it would start two robots writing to each other (RFC 3834).
    assert not acknowledgement_decision(_parsed(marks, sender=SITE, body=FORM), OWN).send


def test_a_form_answered_elsewhere_keeps_the_automatic_rules() -> None:
    no_typed_address = b"Nom : Martin\r\nMobile : 06 12 34 56 78\r\nMessage : x"
    marked = _parsed(b"Auto-Submitted: auto-generated\r\n", sender=SITE, body=no_typed_address)
    decision = acknowledgement_decision(marked, OWN)  # it would go to the form mailer itself
    assert not decision.send
    assert decision.reason.startswith("Auto-Submitted")


def test_no_address_to_answer() -> None:
    form = "Nom : Martin\r\nPrénom : Jeanne\r\nMobile : 06 12 34 56 78\r\nMessage : x".encode()
    parsed = _parsed(b"Content-Type: text/plain; charset=utf-8\r\n", sender=b"", body=form)
    decision = acknowledgement_decision(parsed, OWN)
    assert not decision.send
    assert decision.recipient is None


def test_reasons_carry_no_personal_data() -> None:
    parsed = _parsed(b"Precedence: bulk jeanne.martin@example.test\r\n")
    decision = acknowledgement_decision(parsed, OWN)
    assert "jeanne" not in decision.reason
    assert "@" not in decision.reason


def test_own_addresses_compare_case_insensitively() -> None:
    parsed = _parsed(sender=b"From: Service-Client@Eau.Example.ORG\r\n")
    assert not acknowledgement_decision(parsed, [" SERVICE-CLIENT@eau.example.org "]).send
    assert acknowledgement_decision(parsed, []).send


def test_automatic_reason_covers_machines_not_our_own_loops() -> None:
    assert automatic_reason(_parsed(b"Auto-Submitted: auto-replied\r\n")) is not None
    assert automatic_reason(_parsed(b"List-Id: <l.example.org>\r\n")) is not None
    assert automatic_reason(_parsed(body=b"Bonjour")) is None
    own = _parsed(sender=b"From: service-client@eau.example.org\r\n")
    assert automatic_reason(own) is None
