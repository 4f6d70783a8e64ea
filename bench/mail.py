"""intake_mail end to end on Dovecot, tansu and PostgreSQL: mails/s, mail→item latency, peak RSS.

Issue 4, "Benchmark". Everything is real and on loopback: a private Dovecot
(``services.intake_mail.testing.DovecotServer``, plain IMAP login, Maildir),
the embedded tansu broker (memory storage), a fresh PostgreSQL database
(``scratch_postgres``), and ``aiguillage run intake-mail`` as its own OS
process with its defaults (IMAP IDLE, batches of ``batch_size`` = 100 mails,
``LOG_LEVEL=WARNING`` as in the other benchmarks, migrations on start).

The mails are synthetic contact-form mails (procedure 5.1.1) in the form's
three layouts: 60 % ``text/plain`` 8-bit, 25 % ``multipart/alternative`` text
+ HTML in quoted-printable, 15 % HTML-only with the table layout; each with a
unique Message-ID, the customer's name, e-mail, mobile, a 9-digit customer
reference (7 in 10) and a postal address (1 in 2), and a message taken from the
e-mail texts of ``tests/data/contacts/labelled.jsonl``. One customer in three
writes twice. Every mail is a customer contact: each must give exactly one
item on ``intake.items.v1``, none a dead letter.

Each mode runs on fresh parts (a new Dovecot, broker and database):

1. **Backlog.** ``mails`` form mails are APPENDed to INBOX before the service
   starts (MULTIAPPEND with LITERAL+, 250 mails per command, on one
   connection: a few seconds for 2,000; not timed). The service is then
   started and the bench reads ``intake.items.v1`` from the beginning; each
   item is matched to its mail by the UID in its ``source_ref``.
   *mails/s* = (``mails`` − ``batch_size``) / (last item's record timestamp −
   first item's record timestamp). The items of one batch are published
   together, so that span covers the work of every batch but the first: its
   ``batch_size`` mails are left out of the count (as the router benchmark
   leaves out the items already routed at its first look). Service start-up
   (imports, migrations, IMAP login) is not in the span.
2. **Steady flow.** Once the backlog is drained and the service waits in IDLE,
   ``rate`` mails per second (20 by default: far above the utility's real
   traffic, yet below the service's capacity in both modes, so that the
   figure is the pipeline's delay and not a growing queue) are APPENDed for
   ``steady_s`` seconds (15), one APPEND per mail on one IMAP connection.
   *Mail→item latency* of a mail = its item's record timestamp on
   ``intake.items.v1`` (CreateTime, stamped by the service's producer when it
   publishes the item) − the wall-clock time just before the bench sent that
   mail's APPEND; p50 and p99 over the steady mails. It includes the delivery
   into Dovecot, the IDLE wake-up, UID SEARCH, the fetch, parsing, and the wait
   behind the batch ahead (its store commit, its acknowledgements, its move);
   not the mail's own store commit, acknowledgement and move, which follow its
   publication.
3. **Peak RSS** of the service process: its ``VmHWM`` once both phases are done
   and INBOX is empty (every mail moved to ``Traités``).
4. **CPU time per mail** of the service process (user + system, from
   ``/proc``) over the backlog, from the first item seen on the topic to the
   last, divided by the items seen in between: less noisy than mails/s on a
   shared machine, as it does not count the time spent waiting for a core.

Two modes: without acknowledgements (no ``INTAKE_MAIL_SMTP_HOST``), and with
acknowledgements sent through a local aiosmtpd sink (``SmtpSink``, plain SMTP
on loopback, in this process's thread); the second also checks that exactly
one acknowledgement arrived per mail. A run fails (raises) on a missing or
duplicated item, a missing acknowledgement, mail left in INBOX, a service
that died, or any bound on time exceeded.

Run alone: ``python -m bench.mail [mails]`` (2,000 by default).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.common import Figure, peak_rss_mb, percentile, scratch_postgres, service_env
from schemas.topics import INTAKE_ITEMS
from services.common.embedded import EmbeddedBroker
from services.common.kafka import ensure_topics
from services.common.settings import ServiceSettings
from services.common.testing import ServiceProcess, SmtpSink, eventually
from services.intake_mail.testing import DovecotServer

__all__ = ["run"]

DATASET = Path(__file__).resolve().parents[1] / "tests/data/contacts/labelled.jsonl"
USER = "service-client@eau.example.org"
PASSWORD = "bench-imap"
FROM_ADDRESS = "Service Client <service-client@eau.example.org>"
TARGET_MAILS_S = 500.0
_APPEND_CHUNK = 250
_IMAP_TIMEOUT_S = 60.0
_APPENDUID = re.compile(rb"\[APPENDUID \d+ ([\d:,]+)\]")
_UID = re.compile(r";UID=(\d+)$")
_MESSAGES = re.compile(rb"\(MESSAGES (\d+)\)")

_FIRST = (
    "Jeanne", "Hélène", "Yannick", "Gérard", "Anaïs", "Élodie", "Karim", "Sophie", "Thierry",
    "Nathalie", "François", "Camille", "Mohamed", "Chloé", "Julien", "Maëlle", "Bernard", "Inès",
)  # fmt: skip
_LAST = (
    "Martin", "Marchetti", "Lestrade", "Poulain", "Petit", "Lefèvre", "Benali", "Durand",
    "Moreau", "Garnier", "Rousseau", "Nguyen", "Lambert", "Fontaine", "Chevalier", "Robin",
    "Mercier", "Boyer", "Girard", "André", "Da Silva", "Le Gall",
)  # fmt: skip
_STREETS = (
    "rue des Lilas", "avenue Jean Jaurès", "impasse du Moulin", "boulevard Gambetta",
    "chemin des Vignes", "place de l'Église", "allée des Tilleuls", "rue de la République",
)  # fmt: skip
_CITIES = (
    ("75011", "Paris"), ("69003", "Lyon"), ("13008", "Marseille"), ("33000", "Bordeaux"),
    ("59800", "Lille"), ("44000", "Nantes"), ("31400", "Toulouse"), ("67000", "Strasbourg"),
)  # fmt: skip
_ASCII = str.maketrans("éèêëàâäîïôöùûüçÉÈÊËÀÂÎÏÔÖÙÛÜÇ ", "eeeeaaaiioouuucEEEEAAIIOOUUUC-")


def _examples() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines()]
    return [row for row in rows if row["channel"] == "email"]


def _fields(n: int, customer: int) -> list[tuple[str, str]]:
    """The form's fields for mail ``n`` from synthetic ``customer`` (procedure 5.1.1)."""
    first, last = _FIRST[customer % len(_FIRST)], _LAST[customer // len(_FIRST) % len(_LAST)]
    local = f"{first}.{last}".translate(_ASCII).lower()
    digits = f"{(12_345_678 + customer * 7_919) % 100_000_000:08d}"
    pairs = " ".join(digits[i : i + 2] for i in range(0, 8, 2))
    mobile = (f"06 {pairs}", f"+33 6 {pairs}", f"06.{pairs.replace(' ', '.')}")[customer % 3]
    fields = [
        ("Nom", last),
        ("Prénom", first),
        ("Adresse e-mail", f"{local}.{customer}@example.test"),
        ("Numéro de téléphone mobile", mobile),
    ]
    if customer % 10 < 7:
        fields.append(("Référence client (facultative)", f"{400_000_000 + customer}"))
    if customer % 2 == 0:
        postcode, city = _CITIES[customer % len(_CITIES)]
        street = _STREETS[customer // 3 % len(_STREETS)]
        fields.append(
            ("Adresse (facultative)", f"{customer % 120 + 1} {street}, {postcode} {city}")
        )
    return fields


def _form_mails(prefix: str, start: int, count: int, customers: int) -> list[bytes]:
    """``count`` contact-form mails, numbered from ``start``, from a pool of ``customers``."""
    examples = _examples()
    now = dt.datetime.now(dt.UTC)
    mails = []
    for n in range(start, start + count):
        example = examples[n % len(examples)]
        fields = _fields(n, n % customers)
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = "Site internet <formulaire@eau.example.org>"
        message["To"] = USER
        message["Subject"] = f"Formulaire de contact : {example['subject']}"
        message["Date"] = format_datetime(now)
        message["Message-ID"] = f"<bench-{prefix}-{n}@www.eau.example.org>"
        text = "Nouveau message depuis le formulaire de contact :\n\n"
        text += "".join(f"{label} : {value}\n" for label, value in fields)
        text += f"Message : {example['text']}\n\n--\nCe message a été envoyé depuis le site.\n"
        rows = "".join(
            f"<tr><td><b>{html.escape(label)}</b></td>"
            f"<td>{html.escape(value).replace(chr(10), '<br>')}</td></tr>\n"
            for label, value in [*fields, ("Message", example["text"])]
        )
        page = f"<html><body><h2>Nouvelle demande</h2>\n<table>\n{rows}</table></body></html>\n"
        layout = n % 20
        if layout < 12:
            message.set_content(text, charset="utf-8", cte="8bit")
        elif layout < 17:
            message.set_content(text, charset="utf-8", cte="quoted-printable")
            message.add_alternative(page, subtype="html", charset="utf-8", cte="quoted-printable")
        else:
            message.set_content(page, subtype="html", charset="utf-8", cte="quoted-printable")
        mails.append(message.as_bytes())
    return mails


# -- IMAP (the bench's side: delivering mail) --------------------------------------------


class _Delivery:
    """The bench's IMAP client on one connection: LOGIN, APPEND, STATUS.

    The backlog goes in with MULTIAPPEND (RFC 3502: many mails in one APPEND,
    one transaction in Dovecot) and LITERAL+ (RFC 7888: no round trip per
    mail), ``_APPEND_CHUNK`` mails per command; the steady flow one mail per
    APPEND. The UIDs come from APPENDUID (UIDPLUS).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._tags = 0

    @classmethod
    async def open(cls, dovecot: DovecotServer) -> _Delivery:
        reader, writer = await asyncio.open_connection(dovecot.host, dovecot.port)
        client = cls(reader, writer)
        greeting = await asyncio.wait_for(reader.readline(), _IMAP_TIMEOUT_S)
        if not greeting.startswith(b"* OK"):
            writer.close()
            raise RuntimeError(f"IMAP greeting: {greeting!r}")
        await client._command(f'LOGIN "{USER}" "{PASSWORD}"'.encode())
        return client

    async def _command(self, command: bytes, *literals: bytes) -> tuple[list[bytes], bytes]:
        """Send one command (its literals non-synchronizing); the untagged lines and the OK."""
        self._tags += 1
        tag = b"b%d" % self._tags
        self._writer.write(b"%s %s" % (tag, command))
        for literal in literals:
            self._writer.write(b" {%d+}\r\n" % len(literal))
            self._writer.write(literal)
        self._writer.write(b"\r\n")
        await self._writer.drain()
        untagged: list[bytes] = []
        while True:
            line = await asyncio.wait_for(self._reader.readline(), _IMAP_TIMEOUT_S)
            if not line:
                raise ConnectionError("Dovecot closed the connection")
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1 :].startswith(b"OK"):
                    raise RuntimeError(f"IMAP {command.split()[0]!r} answered {line!r}")
                return untagged, line
            untagged.append(line)

    async def append(self, *mails: bytes) -> list[int]:
        """APPEND the mails to INBOX in one command; their UIDs, in order."""
        _, done = await self._command(b"APPEND INBOX", *mails)
        found = _APPENDUID.search(done)
        if found is None:
            raise RuntimeError(f"APPEND answered without APPENDUID: {done!r}")
        uids: list[int] = []
        for part in found.group(1).decode().split(","):
            low, _, high = part.partition(":")
            uids += range(int(low), int(high or low) + 1)
        if len(uids) != len(mails):
            raise RuntimeError(f"APPEND gave {len(uids)} UIDs for {len(mails)} mails")
        return uids

    async def inbox_count(self) -> int:
        """How many messages INBOX holds (STATUS)."""
        untagged, _ = await self._command(b"STATUS INBOX (MESSAGES)")
        for line in untagged:
            found = _MESSAGES.search(line)
            if found is not None:
                return int(found.group(1))
        raise RuntimeError(f"STATUS INBOX answered {untagged!r}")

    async def close(self) -> None:
        """LOGOUT and close."""
        try:
            await self._command(b"LOGOUT")
        finally:
            self._writer.close()
            await self._writer.wait_closed()


async def _append_backlog(dovecot: DovecotServer, mails: list[bytes]) -> set[int]:
    """Deliver the backlog in MULTIAPPEND commands on one connection; the UIDs."""
    client = await _Delivery.open(dovecot)
    uids: list[int] = []
    try:
        for start in range(0, len(mails), _APPEND_CHUNK):
            uids += await client.append(*mails[start : start + _APPEND_CHUNK])
    finally:
        await client.close()
    return set(uids)


async def _append_steady(
    dovecot: DovecotServer, mails: list[bytes], rate: float
) -> dict[int, float]:
    """Deliver ``rate`` mails per second on one connection; UID → time.time() before its APPEND."""
    client = await _Delivery.open(dovecot)
    sent: dict[int, float] = {}
    try:
        started = time.monotonic()
        for n, raw in enumerate(mails):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            at = time.time()
            (uid,) = await client.append(raw)
            sent[uid] = at
    finally:
        await client.close()
    return sent


async def _inbox_count(dovecot: DovecotServer) -> int:
    client = await _Delivery.open(dovecot)
    try:
        return await client.inbox_count()
    finally:
        await client.close()


# -- the topic (the bench's side: reading items) -------------------------------------------


@dataclass
class _Items:
    """Items seen on ``intake.items.v1``: mail UID → record timestamp (seconds), and copies."""

    at: dict[int, float] = field(default_factory=dict)
    copies: list[int] = field(default_factory=list)

    async def watch(self, bootstrap: str) -> None:
        """Read the topic from the beginning until cancelled."""
        consumer = AIOKafkaConsumer(
            INTAKE_ITEMS,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while True:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    for record in records:
                        found = _UID.search(json.loads(record.value)["source_ref"])
                        if found is None:
                            continue
                        uid = int(found.group(1))
                        if uid in self.at:
                            self.copies.append(uid)
                        else:
                            self.at[uid] = record.timestamp / 1000
        finally:
            await consumer.stop()

    async def wait_for(
        self,
        uids: set[int] | dict[int, float],
        timeout: float,
        what: str,
        check: Callable[[], None],
        cpu: _CpuMeter | None = None,
    ) -> None:
        """Wait until every mail of ``uids`` has its item; ``check()`` raises when hope is lost."""
        deadline = time.monotonic() + timeout
        while any(uid not in self.at for uid in uids):
            check()
            if cpu is not None:
                cpu.sample(len(self.at))
            if time.monotonic() > deadline:
                missing = sum(1 for uid in uids if uid not in self.at)
                raise TimeoutError(f"{what}: {missing}/{len(uids)} items missing after {timeout} s")
            await asyncio.sleep(0.05)


# -- one mode ----------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class _CpuMeter:
    """The service's CPU seconds at the first item seen and at the last sample."""

    pid: int
    first: tuple[int, float] | None = None
    last: tuple[int, float] | None = None

    def sample(self, items: int) -> None:
        """Note the CPU used so far, once items are flowing."""
        if items == 0:
            return
        reading = (items, _cpu_s(self.pid))
        if self.first is None:
            self.first = reading
        self.last = reading

    def ms_per_item(self) -> float:
        """CPU milliseconds per item between the first and the last sample."""
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return float("nan")
        return (self.last[1] - self.first[1]) * 1000 / (self.last[0] - self.first[0])


@dataclass(frozen=True, slots=True)
class _Measured:
    mails_s: float
    latencies_ms: list[float]
    rss_mb: float
    cpu_ms: float


def _env(
    broker: EmbeddedBroker,
    dovecot: DovecotServer,
    url: str,
    tmp: Path,
    batch_size: int,
    sink: SmtpSink | None,
) -> dict[str, str]:
    """The service's environment: the bench's parts, everything else at its default."""
    env = service_env(
        broker.bootstrap_servers,
        url,
        KAFKA_DEFAULT_PARTITIONS="6",
        INTAKE_MAIL_IMAP_HOST=dovecot.host,
        INTAKE_MAIL_IMAP_PORT=str(dovecot.port),
        INTAKE_MAIL_IMAP_SECURITY="plain",
        INTAKE_MAIL_IMAP_USER=USER,
        INTAKE_MAIL_IMAP_PASSWORD=PASSWORD,
        INTAKE_MAIL_BATCH_SIZE=str(batch_size),
        INTAKE_MAIL_ATTACHMENTS_DIR=str(tmp / "attachments"),
    )
    if sink is not None:
        env |= {
            "INTAKE_MAIL_SMTP_HOST": sink.host,
            "INTAKE_MAIL_SMTP_PORT": str(sink.port),
            "INTAKE_MAIL_SMTP_SECURITY": "plain",
            "INTAKE_MAIL_FROM_ADDRESS": FROM_ADDRESS,
        }
    return env


async def _measure(
    mails: int, rate: float, steady_s: float, batch_size: int, acknowledge: bool
) -> _Measured:
    customers = max(1, mails * 2 // 3)
    backlog = _form_mails("backlog", 0, mails, customers)
    steady = _form_mails("steady", mails, round(rate * steady_s), customers)
    items = _Items()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker,
        DovecotServer({USER: PASSWORD}) as dovecot,
    ):
        sink = SmtpSink().start() if acknowledge else None
        try:
            async with scratch_postgres() as url:
                env = _env(broker, dovecot, url, Path(tmp), batch_size, sink)
                await ensure_topics(ServiceSettings.model_validate(env))
                backlog_uids = await _append_backlog(dovecot, backlog)
                if len(backlog_uids) != mails:
                    raise RuntimeError(f"{len(backlog_uids)}/{mails} mails delivered")
                watcher = asyncio.create_task(items.watch(broker.bootstrap_servers))
                service = ServiceProcess("intake-mail", env, Path(tmp)).start()

                def check() -> None:
                    if watcher.done():
                        raise RuntimeError(f"the topic reader stopped: {watcher!r}")
                    if service.process is not None and service.process.poll() is not None:
                        raise RuntimeError(f"intake-mail died:\n{service.output()[-2000:]}")

                assert service.process is not None
                cpu = _CpuMeter(service.process.pid)
                try:
                    await items.wait_for(
                        backlog_uids, max(120.0, mails / 20), "backlog", check, cpu
                    )
                    cpu.sample(len(items.at))
                    times = [items.at[uid] for uid in backlog_uids]
                    span = max(times) - min(times)
                    counted = mails - batch_size if mails > batch_size else mails - 1
                    mails_s = counted / span if span > 0 else float("nan")
                    sent = await _append_steady(dovecot, steady, rate)
                    await items.wait_for(sent, 60.0, "steady flow", check)
                    latencies = [(items.at[uid] - at) * 1000 for uid, at in sent.items()]

                    async def inbox_empty() -> bool:
                        return await _inbox_count(dovecot) == 0

                    await eventually(inbox_empty, timeout=60.0, interval=0.2)
                    if sink is not None:
                        expected = mails + len(steady)

                        async def all_acknowledged() -> bool:
                            return len(sink.messages) >= expected

                        await eventually(all_acknowledged, timeout=60.0, interval=0.1)
                        await asyncio.sleep(0.5)  # a second one per mail would show by now
                        if len(sink.messages) != expected:
                            raise RuntimeError(f"{len(sink.messages)} acknowledgements/{expected}")
                    check()
                    assert service.process is not None
                    rss = peak_rss_mb(service.process.pid)
                finally:
                    service.stop()
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
        finally:
            if sink is not None:
                sink.stop()
    if items.copies:
        raise RuntimeError(f"{len(items.copies)} mails gave a second item")
    return _Measured(mails_s, latencies, rss, cpu.ms_per_item())


async def run(
    mails: int = 2_000,
    rate: float = 20.0,
    steady_s: float = 15.0,
    batch_size: int = 100,
    acknowledgements: tuple[bool, ...] = (False, True),
) -> list[Figure]:
    """Measure intake_mail without, then with, acknowledgements; return its figures."""
    figures: list[Figure] = []
    for acknowledge in acknowledgements:
        mode = "with acknowledgements" if acknowledge else "no acknowledgement"
        measured = await _measure(mails, rate, steady_s, batch_size, acknowledge)
        at = f"at {rate:g}/s, {mode}"
        figures += [
            Figure(f"mail mails/s (backlog, {mode})", measured.mails_s, "mails/s", TARGET_MAILS_S),
            Figure(
                f"mail p50 mail→item {at}",
                percentile(measured.latencies_ms, 50),
                "ms",
                None,
                higher=False,
            ),
            Figure(
                f"mail p99 mail→item {at}",
                percentile(measured.latencies_ms, 99),
                "ms",
                None,
                higher=False,
            ),
            Figure(f"intake-mail peak RSS ({mode})", measured.rss_mb, "MiB", None, higher=False),
            Figure(
                f"intake-mail CPU time per mail, backlog (user+sys, {mode})",
                measured.cpu_ms,
                "ms",
                None,
                higher=False,
            ),
        ]
    return figures


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    for figure in asyncio.run(run(mails=count)):
        print(f"{figure.name}: {figure.measured:.1f} {figure.unit} (target {figure.target})")
