"""Issue 9: the whole pipeline under crashes and a database outage loses nothing, doubles nothing.

Every service runs as its own OS process on tansu, a throwaway PostgreSQL
cluster, Dovecot and an aiosmtpd sink. About 2,000 good contacts and a few
dozen bad ones are fed through the real entry points (IMAP mailbox, scan drop
folder, telephony webhook, plus malformed records on the intake topic) while
services are SIGKILLed at seeded random moments and PostgreSQL is stopped for
20 s. A supervisor restarts whatever exits, as Kubernetes would. At the end,
read from the store, the topics, the mailbox and the SMTP peer:

- every good source contact produced exactly one intake item (by id);
- every item has exactly one routing outcome, one open dossier per customer
  and dossier type (no double opening across two routers), and each dossier
  its task;
- one acknowledgement per customer mail (but never two: those whose send
  was in flight at a SIGKILL stay in doubt, counted), one holding mail per due deadline
  (the clock of sla_watch is moved to when the e-mail deadlines need one,
  with a crash during that sending run), none twice except the mails in doubt
  at the SIGKILL (accepted by the SMTP server, not yet recorded), which go
  out once more under the same Message-ID;
- every bad input is in the DLQ or in quarantine with its reason;
- every consumer group is back to zero lag, and no log line carries an
  e-mail address, a phone number or a customer's name.

``CHAOS_SEED`` replays a run's kill schedule.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aioimaplib import IMAP4

from schemas import CustomerRecord, DeadLetter, IntakeItem, Task
from schemas.dossiers import ContactAttached, DossierEvent, DossierEventAdapter, DossierOpened
from schemas.intake import PostalAddress
from schemas.topics import (
    CUSTOMERS_DIRECTORY,
    DEAD_LETTERS,
    DOSSIER_EVENTS,
    INTAKE_ITEMS,
    SERVICE_QUEUES,
    task_topic,
)
from services.common.embedded import EmbeddedBroker, free_port
from services.common.lag import LagReader
from services.common.settings import ServiceSettings
from services.common.store import create_store
from services.common.store.tables import dossiers
from services.common.testing import (
    PostgresCluster,
    ServiceProcess,
    SmtpSink,
    eventually,
    produce,
    read_topic,
)
from services.intake_mail.adapters.imap_utf7 import quote_mailbox
from services.intake_mail.domain import MailRejected, parse_mail, triage
from services.intake_mail.testing import DovecotServer, ImapMailbox
from services.intake_phone.testing import SECRETS, TWILIO_TOKEN, signed_headers
from services.intake_scan.harness import (
    BAD_FOLDER_FILES,
    BAD_FOLDER_ROWS,
    BAD_ZIP_ENTRIES,
    ScanFolders,
    bad_folder_batch,
    bad_zip_batch,
)
from services.intake_scan.testing import make_text_pdf, sample_letter_text, text_pdf_batch
from services.ops.settings import PIPELINE_GROUPS
from services.sla_watch.domain import (
    PARIS,
    HoldingMailPlan,
    SendHoldingMail,
    SlaPolicy,
    due_actions,
    fold,
    plan_holding_mail,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.imap,
    pytest.mark.smtp,
    pytest.mark.timeout(900),
]

SEED = int(os.environ.get("CHAOS_SEED", "20261126"))
CUSTOMERS = 400
FORM_MAILS = 520
PLAIN_MAILS = 200
LETTER_BATCHES = 5
LETTERS_PER_BATCH = 50
CALLS = 1000
OUTAGE_S = 20.0
SLA_LANES = 2
MAIL_BATCH = 30
MAIL_KILLS = 2
ACK_CONNECTIONS = 4
SLA_MAIL_BATCH = 20
MAILBOX_USER = "service-client@eau.example.org"
MAILBOX_PASSWORD = "secret-imap"
CORPUS = Path(__file__).resolve().parents[1] / "data" / "mail"
MAX_MAIL_BYTES = 1_000_000
SURNAMES = ("Moreau", "Laurent", "Girard", "Bonnet", "Fontaine", "Rousseau", "Lambert", "Chevalier")
FIRST_NAMES = ("Jeanne", "Paul", "Camille", "Louis", "Manon", "Hugo", "Chloé", "Lucas")
REQUESTS = (
    "Ma facture de février est deux fois plus élevée que d'habitude, je la conteste.",
    "Je souhaite passer à la mensualisation de mes factures d'eau.",
    "Voici mon index de compteur relevé ce matin : {n} m3.",
    "Je déménage le mois prochain, merci de résilier mon abonnement.",
    "L'eau du robinet a un goût de chlore très fort depuis trois jours.",
    "Nous n'avons plus de pression au robinet depuis hier soir.",
)
WRAP_UPS = (
    ("FACTURE_CONTESTATION", "Client conteste le montant de sa dernière facture."),
    ("MENSUALISATION", "Demande de mensualisation des paiements."),
    ("RELEVE_INDEX", "Communique son index compteur."),
    ("QUALITE_EAU", "Eau trouble au robinet depuis ce matin."),
)


# --- the synthetic population --------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """A synthetic account holder (invented names, reserved test domains and numbers)."""

    n: int

    @property
    def ref(self) -> str:
        return str(300_000_000 + self.n)

    @property
    def email(self) -> str:
        return f"abonne.{self.n:04d}@example.test"

    @property
    def mobile_national(self) -> str:
        digits = f"{self.n:04d}"
        return f"06 20 00 {digits[:2]} {digits[2:]}"

    @property
    def mobile(self) -> str:
        return "+33" + self.mobile_national.replace(" ", "")[1:]

    @property
    def first_name(self) -> str:
        return FIRST_NAMES[self.n % len(FIRST_NAMES)]

    @property
    def last_name(self) -> str:
        return SURNAMES[self.n % len(SURNAMES)]

    def record(self, now: dt.datetime) -> CustomerRecord:
        return CustomerRecord(
            customer_ref=self.ref,
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email,
            mobile=self.mobile,
            address=PostalAddress(
                lines=(f"{self.n} rue des Tests",), postcode="69003", city="Lyon"
            ),
            updated_at=now,
        )


def _mail_date(now: dt.datetime) -> str:
    return now.astimezone(PARIS).strftime("%a, %d %b %Y %H:%M:%S %z")


def form_mail(n: int, customer: Customer, now: dt.datetime) -> bytes:
    """A contact-form mail (procedure 5.1.1)."""
    text = REQUESTS[n % len(REQUESTS)].format(n=1000 + n)
    return (
        "From: Site internet <formulaire@eau.example.org>\r\n"
        "To: service-client@eau.example.org\r\n"
        f"Subject: Nouveau message depuis le formulaire de contact {n}\r\n"
        f"Message-ID: <chaos-form-{n}@www.eau.example.org>\r\n"
        f"Date: {_mail_date(now)}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Nom : {customer.last_name}\r\nPrénom : {customer.first_name}\r\n"
        f"Adresse e-mail : {customer.email}\r\n"
        f"Numéro de téléphone mobile : {customer.mobile_national}\r\n"
        f"Référence client (facultative) : {customer.ref}\r\n"
        f"Message : {text}\r\n"
    ).encode()


def plain_mail(n: int, customer: Customer, now: dt.datetime) -> bytes:
    """A plain e-mail written by the customer."""
    text = REQUESTS[(n + 2) % len(REQUESTS)].format(n=2000 + n)
    return (
        f"From: {customer.first_name} {customer.last_name} <{customer.email}>\r\n"
        "To: service-client@eau.example.org\r\n"
        f"Subject: Ma demande {n}\r\n"
        f"Message-ID: <chaos-plain-{n}@example.test>\r\n"
        f"Date: {_mail_date(now)}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Bonjour,\r\n\r\n{text}\r\n\r\n{customer.first_name} {customer.last_name}\r\n"
    ).encode()


def call_events(n: int, customer: Customer, start: dt.datetime, rng: random.Random) -> list[bytes]:
    """One answered call in the generic format: in order, with a retried (duplicate) event."""
    call_id = f"chaos-call-{n:05d}"
    code, note = WRAP_UPS[n % len(WRAP_UPS)]

    def event(k: int, kind: str, seconds: int, **extra: Any) -> bytes:
        at = (start + dt.timedelta(seconds=seconds)).isoformat()
        body = {"version": 1, "event_id": f"{call_id}-{k}", "call_id": call_id, "type": kind}
        return json.dumps({**body, "at": at, **extra}).encode()

    events = [
        event(
            1,
            "call.started",
            0,
            direction="inbound",
            caller=customer.mobile_national,
            called="09 72 10 80 80",
        ),
        event(2, "call.answered", 20, agent=f"agent-{n % 40:04d}"),
        event(3, "call.ended", 200, agent=f"agent-{n % 40:04d}", answered=True, duration_s=180),
        event(
            4,
            "call.wrap_up",
            230,
            agent=f"agent-{n % 40:04d}",
            wrap_up={"code": code, "note": note},
        ),
    ]
    return [*events, rng.choice(events)]


def bad_phone_payloads() -> list[tuple[str, bytes]]:
    """Malformed webhook bodies, correctly signed: each must be refused (4xx) and dead-lettered."""
    generic = [
        b"{not json",
        b"[]",
        b'{"version": 1, "type": "call.started"}',
        b'{"version": 1, "call_id": "chaos-bad-1", "type": "call.started", "at": "hier"}',
        b'{"version": 1, "call_id": ["x"], "type": "call.ended", "at": "2026-01-01T10:00:00Z"}',
        b'{"version": 99, "call_id": "chaos-bad-2", "type": "call.started"}',
        b"\xff\xfe\x00garbage",
    ]
    return [("generic", body) for body in generic] + [
        ("twilio", b"CallSid=&CallStatus=completed&From=%FF"),
        ("ringover", b'{"resource": "call", "event": "hangup", "data": "nope"}'),
        ("asterisk", b"Event: Hangup\r\nUniqueid\r\n\r\n"),
    ]


BAD_INTAKE_RECORDS = (
    b"{truncated",
    b'{"item_id": "x"}',
    json.dumps(
        {"item_id": "chaos-bad-channel", "channel": "fax", "received_at": "2026-01-01"}
    ).encode(),
    b"\x00\x01\x02",
    b"null",
)


def expected_mail_folder(raw: bytes) -> tuple[str, str | None]:
    """Where intake-mail files a corpus mail, by the service's own parsing rules."""
    try:
        parsed = parse_mail(raw, max_bytes=MAX_MAIL_BYTES)
    except MailRejected as rejected:
        return "Quarantaine", rejected.reason_code
    return ("Traités" if triage(parsed).customer_contact else "Automatiques"), None


# --- the rig: processes under a supervisor, chaos, probes ---------------------------------


@dataclass
class Pipeline:
    """The services as OS processes, restarted when they exit (as an orchestrator would)."""

    env: dict[str, str]
    log_dir: Path
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    kills: list[tuple[float, str]] = field(default_factory=list)
    exits: list[tuple[float, str, int | None]] = field(default_factory=list)
    _paused: set[str] = field(default_factory=set)

    metrics_ports: dict[str, int] = field(default_factory=dict)

    def add(self, label: str, service: str, **extra: str) -> None:
        port = self.metrics_ports[label] = free_port()
        own = {**self.env, "METRICS_PORT": str(port), **extra}
        self.processes[label] = ServiceProcess(service, own, self.log_dir, label=label).start()

    async def readiness(self, label: str) -> int | None:
        """HTTP status of the service's /readyz (None: not answering)."""
        url = f"http://127.0.0.1:{self.metrics_ports[label]}/readyz"
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(url)).status_code
        except httpx.TransportError:
            return None

    async def supervise(self) -> None:
        """Restart any process that exited on its own (after 1 s, like a restart policy)."""
        while True:
            for label, process in self.processes.items():
                popen = process.process
                if label in self._paused or popen is None or popen.poll() is None:
                    continue
                self.exits.append((time.monotonic(), label, popen.returncode))
                await asyncio.sleep(1.0)
                process.start()
            await asyncio.sleep(0.5)

    async def crash(self, label: str, down_s: float) -> None:
        """SIGKILL one service, leave it down for ``down_s``, start it again."""
        self._paused.add(label)
        try:
            self.processes[label].kill()
            self.kills.append((time.monotonic(), label))
            await asyncio.sleep(down_s)
            self.processes[label].start()
        finally:
            self._paused.discard(label)

    def stop(self) -> dict[str, int | None]:
        """SIGTERM everything; the exit codes (0: graceful)."""
        self._paused.update(self.processes)
        return {label: process.stop() for label, process in self.processes.items()}

    def logs(self) -> str:
        return "\n".join(p.output() for p in self.processes.values())


async def folder_counts(mailbox: ImapMailbox, *folders: str) -> dict[str, int]:
    """Messages per folder through IMAP STATUS (0 for a folder not created yet)."""
    client = IMAP4(mailbox.host, mailbox.port, timeout=10)
    await client.wait_hello_from_server()
    await client.login(mailbox.user, mailbox.password)
    counts = {}
    try:
        for folder in folders:
            response = await client.status(quote_mailbox(folder), "(MESSAGES)")
            found = re.search(rb"MESSAGES (\d+)", b" ".join(response.lines))
            counts[folder] = int(found.group(1)) if response.result == "OK" and found else 0
    finally:
        await client.logout()
    return counts


async def post_until_answered(
    client: httpx.AsyncClient, platform: str, body: bytes, *, deadline_s: float = 240
) -> int:
    """POST like a telephony platform: retry on 503 and while the endpoint is down."""
    headers = (
        {"Authorization": f"Bearer {TWILIO_TOKEN}"}
        if platform == "twilio"
        else signed_headers(SECRETS[platform], body)
    )
    stop = time.monotonic() + deadline_s
    while True:
        try:
            response = await client.post(f"/webhooks/{platform}", content=body, headers=headers)
        except httpx.TransportError:
            status = None
        else:
            status = response.status_code
            if status != 503 and status < 500:
                return status
        if time.monotonic() > stop:
            raise AssertionError(f"webhook never answered (last status {status})")
        await asyncio.sleep(0.5 if status is None else 0.3)


def topic_values(values: list[bytes], model: Any) -> list[Any]:
    return [model.model_validate_json(value) for value in values]


def dossier_events(values: list[bytes]) -> list[DossierEvent]:
    return [DossierEventAdapter.validate_json(value) for value in values]


@dataclass
class Feed:
    """What went in, to compare with what came out."""

    mails: list[bytes] = field(default_factory=list)
    corpus: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    letters: int = 0
    calls: int = 0
    bad_phone: int = 0
    bad_records: int = 0
    scan_dead: list[str] = field(default_factory=list)

    @property
    def customer_mails(self) -> int:
        return len(self.mails)

    @property
    def corpus_items(self) -> int:
        return sum(1 for folder, _ in self.corpus.values() if folder == "Traités")

    @property
    def corpus_quarantined(self) -> int:
        return sum(1 for folder, _ in self.corpus.values() if folder == "Quarantaine")

    @property
    def good_items(self) -> int:
        return self.customer_mails + self.corpus_items + self.letters + self.calls


@contextlib.contextmanager
def infrastructure(root: Path) -> Iterator[tuple[PostgresCluster, str, DovecotServer, SmtpSink]]:
    cluster = PostgresCluster().init()
    broker = EmbeddedBroker(log_path=root / "tansu.log")
    dovecot = DovecotServer({MAILBOX_USER: MAILBOX_PASSWORD})
    sink = SmtpSink()
    try:
        broker.__enter__()
        dovecot.start()
        sink.start()
        yield cluster, broker.bootstrap_servers, dovecot, sink
    finally:
        sink.stop()
        dovecot.stop()
        broker.__exit__(None, None, None)
        cluster.destroy()


# --- the run -------------------------------------------------------------------------------


async def test_chaos_run_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    print(f"CHAOS_SEED={SEED}")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    customers = [Customer(n) for n in range(CUSTOMERS)]
    corpus_spec = json.loads((CORPUS / "expected.json").read_text("utf-8"))
    assert int(corpus_spec["max_bytes"]) == MAX_MAIL_BYTES
    logs = tmp_path / "logs"
    logs.mkdir()
    scans = ScanFolders(tmp_path / "scans")
    scans.staging.mkdir(parents=True)
    clock_file = tmp_path / "sla-clock"
    clock_file.write_text(now.isoformat())
    phone_port = free_port()

    with infrastructure(tmp_path) as (cluster, bootstrap, dovecot, sink):
        database_url = cluster.url()
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_SESSION_TIMEOUT_MS": "3000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "KAFKA_DEFAULT_PARTITIONS": "3",
            "DATABASE_URL": database_url,
            "MIGRATE_ON_START": "false",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **scans.env(),
            "INTAKE_SCAN_MAX_PAGES": "2",
            "INTAKE_SCAN_MAX_FILE_MB": "1",
            "INTAKE_MAIL_IMAP_HOST": dovecot.host,
            "INTAKE_MAIL_IMAP_PORT": str(dovecot.port),
            "INTAKE_MAIL_IMAP_SECURITY": "plain",
            "INTAKE_MAIL_IMAP_USER": MAILBOX_USER,
            "INTAKE_MAIL_IMAP_PASSWORD": MAILBOX_PASSWORD,
            "INTAKE_MAIL_POLL_INTERVAL_S": "2",
            "INTAKE_MAIL_ATTACHMENTS_DIR": str(tmp_path / "attachments"),
            "INTAKE_MAIL_SMTP_HOST": sink.host,
            "INTAKE_MAIL_SMTP_PORT": str(sink.port),
            "INTAKE_MAIL_SMTP_SECURITY": "plain",
            "INTAKE_MAIL_FROM_ADDRESS": "Service Client <service-client@eau.example.org>",
            "INTAKE_MAIL_OWN_ADDRESSES": json.dumps(corpus_spec["own_addresses"]),
            "INTAKE_MAIL_MAX_MESSAGE_BYTES": str(MAX_MAIL_BYTES),
            "INTAKE_MAIL_ACK_SWEEP_INTERVAL_S": "1",
            "INTAKE_MAIL_BATCH_SIZE": str(MAIL_BATCH),
            "INTAKE_MAIL_ACK_CONCURRENCY": str(ACK_CONNECTIONS),
            "INTAKE_PHONE_LISTEN_PORT": str(phone_port),
            "INTAKE_PHONE_GENERIC_HMAC_SECRET": SECRETS["generic"],
            "INTAKE_PHONE_RINGOVER_HMAC_SECRET": SECRETS["ringover"],
            "INTAKE_PHONE_ASTERISK_HMAC_SECRET": SECRETS["asterisk"],
            "INTAKE_PHONE_TWILIO_BEARER_TOKEN": TWILIO_TOKEN,
            "INTAKE_PHONE_SETTLE_S": "0.5",
            "INTAKE_PHONE_GRACE_S": "2",
            "INTAKE_PHONE_SWEEP_INTERVAL_S": "0.2",
            "INTAKE_PHONE_OUTBOX_INTERVAL_S": "0.5",
            "SLA_WATCH_CLOCK_FILE": str(clock_file),
            "SLA_WATCH_SCHEDULER_INTERVAL_S": "0.5",
            "SLA_WATCH_SMTP_HOST": sink.host,
            "SLA_WATCH_SMTP_PORT": str(sink.port),
            "SLA_WATCH_SMTP_TIMEOUT_S": "3",
            "SLA_WATCH_SEND_LEASE_S": "10",
            "SLA_WATCH_MAIL_FROM": "Service Client <service-client@eau.example.org>",
            "SLA_WATCH_OUTBOX_SWEEP_INTERVAL_S": "0.5",
            "SLA_WATCH_SENDER_LANES": str(SLA_LANES),
            "SLA_WATCH_MAIL_BATCH_SIZE": str(SLA_MAIL_BATCH),
        }
        settings = ServiceSettings.model_validate(env)
        full_env = {**os.environ, **env}
        prepared = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "prepare"],
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert prepared.returncode == 0, prepared.stderr[-3000:]
        await produce(
            bootstrap,
            CUSTOMERS_DIRECTORY,
            [(c.ref.encode(), c.record(now).model_dump_json().encode()) for c in customers],
        )

        pipeline = Pipeline(env, logs)
        pipeline.add("router-a", "router")
        pipeline.add("router-b", "router")
        pipeline.add("intake-mail", "intake-mail")
        pipeline.add("intake-scan", "intake-scan")
        pipeline.add("intake-phone", "intake-phone")
        pipeline.add("sla-watch", "sla-watch")
        supervisor = asyncio.create_task(pipeline.supervise())
        store = create_store(database_url)
        feed = Feed()
        mailbox = ImapMailbox(dovecot.host, dovecot.port, MAILBOX_USER, MAILBOX_PASSWORD)
        try:
            await _wait_for_directory(store, CUSTOMERS)
            started = time.monotonic()
            chaos = asyncio.create_task(_chaos(pipeline, cluster, rng))
            await asyncio.gather(
                _feed_mails(mailbox, customers, feed, now, rng),
                _feed_scans(scans, customers, feed, now),
                _feed_calls(phone_port, customers, feed, now, rng),
                _feed_bad_records(bootstrap, feed),
            )
            print(f"fed {feed.good_items} good contacts in {time.monotonic() - started:.0f} s")
            not_ready = await chaos
            print(f"kills: {pipeline.kills}, supervisor restarts: {pipeline.exits}")

            # Convergence: every source drained, every item routed.
            await _drained(mailbox, scans, bootstrap, feed)
            items = await _intake_items(bootstrap, feed.good_items)
            routed = await _routing(bootstrap, {i.item_id for i in items})
            print(f"converged after {time.monotonic() - started:.0f} s")
            for label in STORE_USERS:
                assert await pipeline.readiness(label) == 200, label

            # SLA: move sla_watch's clock to when the e-mail dossiers need a holding
            # mail, and crash it in the middle of that sending run.
            holding_at, expected_holding = _expected_holding_mails(routed.events)
            await _holding_run(pipeline, sink, clock_file, holding_at, len(expected_holding))
            await asyncio.sleep(3)  # a late duplicate would show up here
            codes = pipeline.stop()
            supervisor.cancel()

            await _check_items(items, feed)
            await _check_routing(routed, items, store)
            _check_mails(sink, items, expected_holding, await _acks_in_doubt(store))
            await _check_bad_inputs(bootstrap, mailbox, scans, feed)
            await _check_zero_lag(settings)
            assert not_ready == set(STORE_USERS), "readiness reports the database outage"
            _check_logs(pipeline.logs(), customers)
            await _check_no_stray_workers(bootstrap)
            assert len(pipeline.kills) >= 5
            assert all(code == 0 for code in codes.values()), codes
        finally:
            supervisor.cancel()
            pipeline.stop()
            await store.dispose()


# --- feeding and chaos -------------------------------------------------------------------


async def _wait_for_directory(store: Any, count: int) -> None:
    async def materialised() -> bool:
        async with store.engine.connect() as connection:
            found = await connection.scalar(sa.text("SELECT count(*) FROM customers"))
        return int(found or 0) >= count

    await eventually(materialised, timeout=90, interval=0.5)


STORE_USERS = ("router-a", "intake-mail", "intake-scan", "sla-watch")
"""Services whose readiness includes the store: they must say "not ready" during the outage."""


async def _chaos(pipeline: Pipeline, cluster: PostgresCluster, rng: random.Random) -> set[str]:
    """Six SIGKILLs at random moments (each intake service and both routers) and the outage.

    Returns the services that reported "not ready" (503 on /readyz) during the outage.
    """
    victims = ["router-a", "router-b", "intake-mail", "intake-scan", "intake-phone", "intake-mail"]
    rng.shuffle(victims)
    not_ready: set[str] = set()
    for number, label in enumerate(victims):
        await asyncio.sleep(rng.uniform(2.0, 6.0))
        if number == 2:
            await asyncio.to_thread(cluster.stop)
            print(f"PostgreSQL stopped for {OUTAGE_S:.0f} s")
            until = time.monotonic() + OUTAGE_S
            while time.monotonic() < until:
                for service in STORE_USERS:
                    if await pipeline.readiness(service) == 503:
                        not_ready.add(service)
                await asyncio.sleep(1.0)
            await asyncio.to_thread(cluster.start)
        await pipeline.crash(label, rng.uniform(0.2, 2.0))
    return not_ready


async def _feed_mails(
    mailbox: ImapMailbox,
    customers: list[Customer],
    feed: Feed,
    now: dt.datetime,
    rng: random.Random,
) -> None:
    feed.mails = [form_mail(n, customers[n % CUSTOMERS], now) for n in range(FORM_MAILS)]
    feed.mails += [
        plain_mail(n, customers[(7 * n + 3) % CUSTOMERS], now) for n in range(PLAIN_MAILS)
    ]
    corpus = {path.name: path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))}
    feed.corpus = {name: expected_mail_folder(raw) for name, raw in corpus.items()}
    everything = [*feed.mails, *corpus.values()]
    rng.shuffle(everything)
    for start in range(0, len(everything), 30):
        await mailbox.append(*everything[start : start + 30])
        await asyncio.sleep(1.2)


async def _feed_scans(
    scans: ScanFolders, customers: list[Customer], feed: Feed, now: dt.datetime
) -> None:
    scanned_at = now.astimezone(PARIS).isoformat()
    for batch in range(LETTER_BATCHES):
        refs = [customers[batch * LETTERS_PER_BATCH + i].ref for i in range(LETTERS_PER_BATCH)]
        name = f"LOT-{batch:02d}"
        await asyncio.to_thread(text_pdf_batch, scans.staging / name, refs, scanned_at=scanned_at)
        scans.drop(name)
        feed.letters += LETTERS_PER_BATCH
    letter = f"Référence client : {customers[-1].ref}\nJe conteste ma facture d'eau."
    feed.letters += len(await asyncio.to_thread(bad_folder_batch, scans.staging / "BAD", letter))
    scans.drop("BAD")
    pdf = scans.root / "zip-letter.pdf"
    text = sample_letter_text(customer_ref=customers[-2].ref)
    await asyncio.to_thread(make_text_pdf, text, pdf)
    feed.letters += len(bad_zip_batch(scans.staging / "ZIP.zip", pdf.read_bytes()))
    scans.drop("ZIP.zip")
    feed.scan_dead = [*BAD_FOLDER_FILES.values(), *BAD_FOLDER_ROWS, *BAD_ZIP_ENTRIES]


async def _feed_calls(
    port: int, customers: list[Customer], feed: Feed, now: dt.datetime, rng: random.Random
) -> None:
    calls = [
        call_events(n, customers[(3 * n + 1) % CUSTOMERS], now + dt.timedelta(seconds=n), rng)
        for n in range(CALLS)
    ]
    queue: asyncio.Queue[list[bytes]] = asyncio.Queue()
    for call in calls:
        queue.put_nowait(call)
    refused: list[int] = []

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:

        async def worker() -> None:
            while not queue.empty():
                for body in queue.get_nowait():
                    status = await post_until_answered(client, "generic", body)
                    if status >= 300:
                        refused.append(status)

        await asyncio.gather(*(worker() for _ in range(16)))
        for platform, body in bad_phone_payloads():
            status = await post_until_answered(client, platform, body)
            assert 400 <= status < 500, (platform, body, status)
            feed.bad_phone += 1
    assert refused == [], f"good call events refused: {collections.Counter(refused)}"
    feed.calls = CALLS


async def _feed_bad_records(bootstrap: str, feed: Feed) -> None:
    await asyncio.sleep(5)
    await produce(bootstrap, INTAKE_ITEMS, [(b"bad", record) for record in BAD_INTAKE_RECORDS])
    feed.bad_records = len(BAD_INTAKE_RECORDS)


async def _drained(mailbox: ImapMailbox, scans: ScanFolders, bootstrap: str, feed: Feed) -> None:
    async def mailbox_empty() -> bool:
        return (await folder_counts(mailbox, "INBOX"))["INBOX"] == 0

    async def scan_inbox_empty() -> bool:
        return not any(scans.inbox.iterdir())

    await eventually(mailbox_empty, timeout=240, interval=1)
    await eventually(scan_inbox_empty, timeout=240, interval=1)


async def _intake_items(bootstrap: str, expected: int) -> list[IntakeItem]:
    values: list[bytes] = []

    async def complete() -> bool:
        nonlocal values
        values = await read_topic(bootstrap, INTAKE_ITEMS, quiet_s=1.0, max_s=60)
        return len({_item_id(v) for v in values} - {None}) >= expected

    with contextlib.suppress(AssertionError):
        await eventually(complete, timeout=240, interval=2)
    items = []
    for value in values:
        with contextlib.suppress(ValueError):
            items.append(IntakeItem.model_validate_json(value))
    return items


def _item_id(value: bytes) -> str | None:
    try:
        return IntakeItem.model_validate_json(value).item_id
    except ValueError:
        return None


@dataclass
class Routing:
    events: list[DossierEvent]
    tasks: list[Task]


async def _routing(bootstrap: str, item_ids: set[str]) -> Routing:
    routing = Routing([], [])

    async def every_item_routed() -> bool:
        routing.events = dossier_events(await read_topic(bootstrap, DOSSIER_EVENTS, max_s=60))
        routing.tasks = []
        for queue in SERVICE_QUEUES:
            values = await read_topic(bootstrap, task_topic(queue), quiet_s=0.3, max_s=60)
            routing.tasks += topic_values(values, Task)
        done: set[str | None] = {
            e.item_id for e in routing.events if isinstance(e, DossierOpened | ContactAttached)
        }
        done |= {t.item_id for t in routing.tasks if t.action == "review_perimeter"}
        return item_ids <= done

    with contextlib.suppress(AssertionError):
        await eventually(every_item_routed, timeout=240, interval=2)
    return routing


def _expected_holding_mails(events: list[DossierEvent]) -> tuple[dt.datetime, set[str]]:
    """An instant when the e-mail dossiers need their holding mail, and the dossiers due then.

    The instant is the latest planned holding-mail time of the e-mail deadlines
    (48 h, planned 6 h before, inside the sending window); which dossiers are
    due then is the SLA rules' own answer (``due_actions``).
    """
    policy = SlaPolicy()
    by_dossier: dict[str, list[DossierEvent]] = collections.defaultdict(list)
    for event in events:
        by_dossier[event.dossier_id].append(event)
    states = [state for evs in by_dossier.values() if (state := fold(evs, policy)) is not None]
    plans = [
        plan.send_at
        for state in states
        if state.deadline is not None and state.deadline.basis == "48h"
        if isinstance(
            plan := plan_holding_mail(state.deadline, policy, state.calendar), HoldingMailPlan
        )
    ]
    assert plans, "no e-mail dossier to send a holding mail for"
    at = max(plans)
    expected = {
        state.dossier_id
        for state in states
        if any(
            isinstance(action, SendHoldingMail) and action.medium == "email"
            for action in due_actions(state, at, policy)
        )
    }
    return at, expected


def _holding_mails(sink: SmtpSink) -> list[str]:
    """Dossier ids of the holding mails the SMTP peer received, in order."""
    return [m["X-Aiguillage-Dossier"] for m in sink.parsed() if m["X-Aiguillage-Dossier"]]


async def _holding_run(
    pipeline: Pipeline, sink: SmtpSink, clock_file: Path, at: dt.datetime, expected: int
) -> None:
    """Move sla_watch's clock; SIGKILL it once a third of the mails went out; wait for all."""
    await asyncio.to_thread(clock_file.write_text, at.isoformat())

    def sent_at_least(count: int) -> Any:
        async def probe() -> bool:
            return len(_holding_mails(sink)) >= count

        return probe

    await eventually(sent_at_least(max(1, expected // 3)), timeout=120, interval=0.2)
    await pipeline.crash("sla-watch", 1.0)
    await eventually(sent_at_least(expected), timeout=180, interval=0.5)


# --- the checks ----------------------------------------------------------------------------


def _distinct(items: list[IntakeItem]) -> dict[str, IntakeItem]:
    return {item.item_id: item for item in items}


async def _check_items(items: list[IntakeItem], feed: Feed) -> None:
    distinct = _distinct(items)
    print(f"intake items: {len(items)} records, {len(distinct)} distinct")
    channels = collections.Counter(item.channel for item in distinct.values())
    assert channels == {
        "email": feed.customer_mails + feed.corpus_items,
        "letter": feed.letters,
        "phone": feed.calls,
    }
    subjects = collections.Counter(
        item.subject for item in distinct.values() if item.channel == "email"
    )
    for n in range(FORM_MAILS):
        assert subjects[f"Nouveau message depuis le formulaire de contact {n}"] == 1, n
    for n in range(PLAIN_MAILS):
        assert subjects[f"Ma demande {n}"] == 1, n
    calls = collections.Counter(
        item.source_ref for item in distinct.values() if item.channel == "phone"
    )
    assert len(calls) == CALLS
    assert set(calls.values()) == {1}


async def _check_routing(routing: Routing, items: list[IntakeItem], store: Any) -> None:
    events = {event.event_id: event for event in routing.events}
    tasks = {task.task_id: task for task in routing.tasks}
    outcomes: collections.Counter[str] = collections.Counter()
    opened: dict[str, DossierOpened] = {}
    for event in events.values():
        if isinstance(event, DossierOpened):
            outcomes[event.item_id] += 1
            opened[event.dossier_id] = event
        elif isinstance(event, ContactAttached):
            outcomes[event.item_id] += 1
    for task in tasks.values():
        if task.action == "review_perimeter" and task.item_id is not None:
            outcomes[task.item_id] += 1
    item_ids = set(_distinct(items))
    assert set(outcomes) == item_ids
    assert set(outcomes.values()) == {1}, "one routing outcome per item"
    per_request = collections.Counter(
        (event.customer_ref, event.dossier_type) for event in opened.values() if event.identified
    )
    assert per_request, "customers identified"
    assert set(per_request.values()) == {1}, "one open dossier per request"
    for dossier_id in opened:
        assert f"{dossier_id}:handle_request" in tasks, dossier_id
    attached = [e for e in events.values() if isinstance(e, ContactAttached)]
    for event in attached:
        key = f"{event.dossier_id}:prioritise_multicontact:{event.item_id}"
        assert key in tasks, key
    async with store.engine.connect() as connection:
        stored = await connection.scalar(sa.select(sa.func.count()).select_from(dossiers))
    assert stored == len(opened)
    print(
        f"routing: {len(opened)} dossiers, {len(attached)} multi-contacts, "
        f"{len(tasks)} tasks ({len(routing.tasks) - len(tasks)} redelivered records)"
    )


async def _acks_in_doubt(store: Any) -> set[str]:
    """Acknowledgements claimed and never recorded (a SIGKILL mid-batch)."""
    table = sa.table("mail_acknowledgements", sa.column("item_id"), sa.column("status"))
    query = sa.select(table.c.item_id).where(table.c.status.in_(("sending", "uncertain")))
    async with store.engine.connect() as connection:
        return set((await connection.scalars(query)).all())


def _check_mails(
    sink: SmtpSink,
    items: list[IntakeItem],
    expected_holding: set[str],
    in_doubt_acks: set[str],
) -> None:
    messages = sink.parsed()
    acknowledged = collections.Counter(
        m["X-Aiguillage-Item"] for m in messages if m["X-Aiguillage-Item"]
    )
    email_items = {i.item_id: i for i in _distinct(items).values() if i.channel == "email"}
    assert set(acknowledged.values()) == {1}, "at most one acknowledgement per item"
    assert set(acknowledged) <= set(email_items)
    ours = {
        item_id
        for item_id, item in email_items.items()
        if item.subject
        and (
            item.subject.startswith("Nouveau message depuis")
            or item.subject.startswith("Ma demande")
        )
    }
    # At most one acknowledgement per item (issue 4): a SIGKILL between claiming a
    # batch of them and recording it leaves those rows in doubt, never resent
    # (services/intake_mail/acknowledgements.py). Every other customer mail got one.
    missing = ours - set(acknowledged)
    assert missing <= in_doubt_acks, "every customer mail acknowledged, or in doubt"
    assert len(in_doubt_acks) <= MAIL_KILLS * 2 * ACK_CONNECTIONS, "one claimed chunk per kill"
    holding = collections.Counter(_holding_mails(sink))
    assert set(holding) == expected_holding, "a holding mail for every due deadline, no other"
    # SMTP cannot make a hand-over and our record of it atomic: a SIGKILL after the
    # server's 250 and before the commit leaves those mails in doubt, and they go
    # out again after the lease, with the same Message-ID (services/sla_watch/sender.py).
    # Anything else sent twice is a defect; so is a copy under another Message-ID.
    in_doubt = {dossier for dossier, count in holding.items() if count > 1}
    assert set(holding.values()) <= {1, 2}, "at most one resend, only of a mail in doubt"
    assert len(in_doubt) <= SLA_LANES * SLA_MAIL_BATCH, "only the batches in flight at the kill"
    message_ids: dict[str, set[str]] = collections.defaultdict(set)
    for message in messages:
        if message["X-Aiguillage-Dossier"]:
            message_ids[message["X-Aiguillage-Dossier"]].add(message["Message-ID"])
    assert all(len(ids) == 1 for ids in message_ids.values()), "one Message-ID per deadline"
    print(
        f"mails: {len(acknowledged)} acknowledgements ({len(in_doubt_acks)} in doubt), "
        f"{len(holding)} holding mails, "
        f"{len(in_doubt)} resent after the SIGKILL (in doubt, same Message-ID)"
    )


async def _check_bad_inputs(
    bootstrap: str, mailbox: ImapMailbox, scans: ScanFolders, feed: Feed
) -> None:
    letters = {
        letter.dead_letter_id: letter
        for letter in topic_values(await read_topic(bootstrap, DEAD_LETTERS, max_s=60), DeadLetter)
    }
    by_service: dict[str, list[str]] = collections.defaultdict(list)
    for letter in letters.values():
        assert letter.reason.strip(), letter
        by_service[letter.service].append(letter.reason_code)
    print("dead letters:", {name: len(codes) for name, codes in by_service.items()})
    quarantined = [code for folder, code in feed.corpus.values() if folder == "Quarantaine"]
    assert sorted(by_service.pop("intake-mail", [])) == sorted(c or "" for c in quarantined)
    assert sorted(by_service.pop("intake-scan", [])) == sorted(feed.scan_dead)
    assert len(by_service.pop("intake-phone", [])) == feed.bad_phone
    assert len(by_service.pop("router", [])) == feed.bad_records
    assert by_service == {}, f"unexpected dead letters: {by_service}"
    folders = await folder_counts(mailbox, "INBOX", "Traités", "Quarantaine", "Automatiques")
    assert folders["INBOX"] == 0
    assert folders["Traités"] == feed.customer_mails + feed.corpus_items
    assert folders["Quarantaine"] == feed.corpus_quarantined
    assert folders["Automatiques"] == len(feed.corpus) - feed.corpus_items - feed.corpus_quarantined
    assert list(scans.work.rglob("*.pdf")) == []


async def _check_zero_lag(settings: ServiceSettings) -> None:
    async def caught_up() -> bool:
        async with LagReader(settings) as reader:
            snapshot = await reader.snapshot(PIPELINE_GROUPS)
        behind = [
            (lag.group, lag.topic, lag.partition, lag.lag) for lag in snapshot.partitions if lag.lag
        ]
        return not behind

    await eventually(caught_up, timeout=30, interval=1)


def _stray_workers(bootstrap: str) -> list[int]:
    """Pool workers (router classifier, scan reader) spawned by this run's services, alive."""
    marker = f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if b"spawn_main" in (proc / "cmdline").read_bytes() and marker in (
                proc / "environ"
            ).read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except (OSError, ValueError):  # gone meanwhile, or not a process
            continue
    return found


async def _check_no_stray_workers(bootstrap: str) -> None:
    """Services SIGKILLed during the run took their worker processes with them."""

    async def none_left() -> bool:
        return not _stray_workers(bootstrap)

    await eventually(none_left, timeout=15, interval=1)


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])(?:\+33\s?|0)[1-9](?:[ .]?\d{2}){4}(?!\w)")


def _check_logs(logs: str, customers: list[Customer]) -> None:
    """No e-mail address, phone number or customer name in any service's log."""
    allowed = {"service-client@eau.example.org", MAILBOX_USER}
    addresses = {a for a in _EMAIL.findall(logs) if a not in allowed}
    assert addresses == set(), sorted(addresses)[:10]
    assert _PHONE.findall(logs) == [], _PHONE.findall(logs)[:10]
    names = {c.last_name for c in customers} | {"Dupré", "Éclusiers"}
    found = {name for name in names if re.search(rf"\b{name}\b", logs)}
    assert found == set(), found
