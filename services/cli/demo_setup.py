"""The demo's own settings and its feed through the real intake channels.

``aiguillage up --demo`` drops a scanned letter (rendered, then read by OCR)
into the scan inbox, delivers web-form and plain e-mails into a local Maildir
read by intake_mail, and posts sample telephony webhooks to intake_phone, on
top of the normalised sample contacts it publishes directly.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import urllib.request
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from services.common.embedded import free_port

__all__ = ["demo_settings", "drop_letter", "post_calls", "write_mails"]

PLATFORMS = ("generic", "ringover", "twilio", "asterisk")


def demo_settings(root: Path) -> dict[str, str]:
    """Environment for a demo: quiet logs, local Maildir, fresh webhook secrets, fast timers."""
    env = {
        "LOG_LEVEL": "WARNING",
        "INTAKE_MAIL_MAILDIR": str(root / "maildir"),
        "INTAKE_MAIL_POLL_INTERVAL_S": "1",
        "INTAKE_SCAN_POLL_INTERVAL_S": "0.5",
        "INTAKE_SCAN_SETTLE_S": "0.5",
        "INTAKE_SCAN_OCR_WORKERS": "1",
        "INTAKE_PHONE_LISTEN_PORT": str(free_port()),
        "INTAKE_PHONE_SETTLE_S": "0.5",
        "INTAKE_PHONE_GRACE_S": "2",
    }
    for platform in PLATFORMS:
        env[f"INTAKE_PHONE_{platform.upper()}_HMAC_SECRET"] = secrets.token_hex(16)
    return env


def write_mails(maildir: Path, now: dt.datetime) -> int:
    """Deliver a web-form mail and a plain reply into ``maildir/new``; return how many."""
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    form = EmailMessage()
    form["From"] = "Formulaire site <formulaire@eau.example.test>"
    form["To"] = "service-client@eau.example.test"
    form["Subject"] = "Formulaire de contact : réclamation"
    form.set_content(
        "Nom : Moreau\nPrénom : Élodie\nAdresse e-mail : elodie.moreau@example.test\n"
        "Numéro de téléphone mobile : 06 12 34 56 09\nRéférence client : 100000009\n"
        "Adresse : 5 chemin des Vignes 67000 Strasbourg\n"
        "Message : Bonjour, l'eau du robinet est marron depuis trois jours et a un goût "
        "de métal. Est-elle potable ? Merci de me répondre rapidement.\n"
    )
    reply = EmailMessage()
    reply["From"] = "Hugo Lambert <hugo.lambert@example.test>"
    reply["To"] = "service-client@eau.example.test"
    reply["Subject"] = "RE: Votre demande de mensualisation"
    reply.set_content(
        "Bonjour,\nJe vous renvoie mon RIB pour la mensualisation, référence client 100000010.\n"
        "Cordialement,\nHugo Lambert\n\nLe 2 mars 2026 à 10:12, Service Client a écrit :\n"
        "> Merci de nous transmettre un RIB.\n"
    )
    for number, message in enumerate((form, reply)):
        message["Date"] = format_datetime(now)
        message["Message-ID"] = make_msgid(domain="example.test")
        name = f"{int(time.time())}.demo{number}.localhost"
        (maildir / "tmp" / name).write_bytes(bytes(message))
        (maildir / "tmp" / name).rename(maildir / "new" / name)
    return 2


def drop_letter(inbox: Path, now: dt.datetime) -> int:
    """Render one scanned letter (300 dpi PNG, French OCR) as a complete batch; return 1."""
    from services.intake_scan.testing import index_row, render_letter_png, write_index

    text = "\n".join(
        (
            "Louise Girard", "8 rue du Moulin", "57000 Metz", "",
            "Service Client TSA 50001", "36400 La Châtre", "",
            "Metz, le 3 mars 2026", "", "Objet : fuite au compteur",
            "Référence client : 100000011", "", "Madame, Monsieur,",
            "Depuis une semaine, le compteur fuit dans le regard devant ma maison.",
            "Je vous demande d'envoyer un technicien.", "Veuillez agréer mes salutations.",
            "", "Louise Girard",
        )
    )  # fmt: skip
    batch = inbox / f"demo-{now:%Y%m%d%H%M%S}"
    staging = inbox.parent / f".{batch.name}"
    staging.mkdir(parents=True, exist_ok=True)
    render_letter_png(text, staging / "lettre-1.png")
    write_index(staging / "index.csv", [index_row("lettre-1.png", scanned_at=now.isoformat())])
    inbox.mkdir(parents=True, exist_ok=True)
    staging.rename(batch)
    return 1


def post_calls(env: dict[str, str]) -> int:
    """POST the bundled telephony samples, signed; return how many calls should be routed."""
    from services.intake_phone.auth import sign
    from services.intake_phone.testing import sample, sample_calls

    base = f"http://127.0.0.1:{env['INTAKE_PHONE_LISTEN_PORT']}/webhooks"
    routed = 0
    for call in sample_calls():
        secret = env[f"INTAKE_PHONE_{call.platform.upper()}_HMAC_SECRET"]
        for name in call.payloads:
            body = sample(name)
            request = urllib.request.Request(  # noqa: S310 - loopback URL built here
                f"{base}/{call.platform}",
                data=body,
                headers={"X-Aiguillage-Signature": sign(secret, body)},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                pass
        routed += int(call.routed)
    return routed
