"""sla_watch on PostgreSQL: due deadlines among 1,000,000, holding mails/s, peak RSS.

The store: ``dossiers`` open dossiers (1,000,000 by default) in sla_watch's
own table. ``templates`` of them are real: a ``DossierOpened`` (channel and
need, region, dossier type, kind, e-mail address or none, drawn at random;
contact dates spread over the last 48 h, 7 days or 21 days by deadline
basis) recorded through ``SlaWatchService.record`` at its contact time, so
their events (the opening and the ``DeadlineSet`` the service adds) and
summary columns (``due_at``, ``holding_mail_at``, ``next_check_at``) are the
service's own. The others are copies made inside PostgreSQL (``INSERT …
SELECT``), each with its own dossier id, customer reference and e-mail
address written into its events, and its template's deadlines. At the
bench's fixed instant ``T0`` (Wednesday 17 June 2026, 10:00 Paris, inside
the sending window) ``due`` dossiers (1 % by default) are due: their
holding-mail time came and their deadline has not; every other one's next
check lies ahead, spread over the next three weeks. The table is vacuumed
and analysed, as autovacuum keeps it.

What is measured:

1. The scheduler's claim, ``SlaRepository.claim_due(T0, 200)`` (200: the
   default ``SLA_WATCH_SCHEDULER_BATCH_SIZE``; ``FOR UPDATE SKIP LOCKED``,
   rows decoded), each call in its own transaction, rolled back: median of
   ``claims`` calls. The same with the limit at ``due`` (every due dossier
   in one claim) is reported without a target.
2. The scheduler's work on them: ``SlaWatchService.tick()`` at T0 until
   nothing is due queues the ``due`` holding mails (dossiers/s, no target).
3. Holding mails/s: ``aiguillage run sla-watch`` as its own OS process (its
   clock file at T0, default settings: batches of 50 mails claimed in one
   transaction, sent over 4 kept-alive SMTP connections, recorded in one
   transaction) sends the queued mails to an aiosmtpd sink on loopback
   (claim, SMTP, ``sent`` with ``HoldingMailSent`` and ``OutboundContact``
   through the outbox to tansu), from the first message the sink receives
   to the last. Every action must end ``sent``, with one message each, and
   no Message-ID twice. The sink runs in the bench's own process (a thread),
   so it shares the machine's cores with the service, tansu and PostgreSQL.
4. That process's peak RSS (VmHWM) once every mail is sent, and its CPU time
   (user + system, from ``/proc``) per mail once the first one was received.

The ``sla-watch`` consumer group is first set at the end of
``dossier.events.v1``, where the running service would be: the events the
bench's in-process service published are its own, already folded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import Figure, peak_rss_mb, scratch_postgres, service_env
from schemas.dossiers import DossierOpened, Kind
from schemas.intake import Channel
from schemas.topics import DOSSIER_EVENTS
from services.common.embedded import EmbeddedBroker
from services.common.kafka import build_broker, ensure_topics
from services.common.logging import configure_logging
from services.common.outbox import OutboxRelay
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store, migrate
from services.common.testing import ServiceProcess, SmtpSink
from services.sla_watch.adapters.repository import SlaRepository
from services.sla_watch.adapters.tables import sla_actions, sla_dossiers
from services.sla_watch.domain import PARIS, SlaPolicy
from services.sla_watch.service import SlaWatchService
from services.sla_watch.testing import ClockFile, opened

__all__ = ["run"]

T = TypeVar("T")
T0 = dt.datetime(2026, 6, 17, 10, 0, tzinfo=PARIS).astimezone(dt.UTC)
MAIL_FROM = "Service Client <service.client@eau.example>"
SCHEDULER_BATCH = 200  # SLA_WATCH_SCHEDULER_BATCH_SIZE's default

# (channel, needs field work): weight. Contacts spread over the deadline's span.
_NEEDS: dict[tuple[Channel, bool], int] = {
    ("email", False): 30,
    ("email", True): 3,
    ("letter", False): 35,
    ("letter", True): 10,
    ("phone", False): 17,
    ("phone", True): 5,
}
_TYPES = {"COMPTEUR": 30, "FACTURATION": 25, "ABONNEMENT": 15, "BRANCHEMENT": 10}
_TYPES |= {"QUALITE_EAU": 8, "FAC": 7, "RDR": 5}
_REGIONS: dict[str | None, int] = {None: 88, "57": 5, "67": 4, "68": 3}

_COPY = sa.text(
    """
    INSERT INTO sla_dossiers (dossier_id, events, status, deadline_id, due_at,
                              holding_mail_at, next_check_at, parked_reason, updated_at)
    SELECT c.id,
           replace(replace(replace(d.events, d.dossier_id, c.id), t.email_json, c.email_json),
                   t.ref_json, c.ref_json),
           d.status, replace(d.deadline_id, d.dossier_id, c.id), d.due_at, d.holding_mail_at,
           d.next_check_at, NULL, d.updated_at
    FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g(n)
    JOIN bench_sla_templates t
      ON t.bucket = CAST(:bucket AS text) AND t.k = g.n % CAST(:templates AS integer)
    JOIN sla_dossiers d ON d.dossier_id = t.dossier_id
    CROSS JOIN LATERAL (
        SELECT 'DOS-' || upper(substr(md5(CAST(:bucket AS text) || g.n::text), 1, 20)) AS id,
               CASE WHEN t.has_email
                    THEN '"reply_email":"client.' || CAST(:bucket AS text) || g.n::text
                         || '@example.test"'
                    ELSE t.email_json END AS email_json,
               '"customer_ref":"' || (CAST(:ref_base AS integer) + g.n)::text || '"' AS ref_json
    ) AS c
    """
)


class _Clock:
    """The service's injectable clock (``ports.Clock``), set by the bench."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


@dataclass(frozen=True, slots=True)
class _Candidate:
    dossier_id: str
    email: str | None
    customer_ref: str
    demande: bool


def _pick(rng: random.Random, weights: dict[T, int]) -> T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _candidate(rng: random.Random, n: int) -> tuple[_Candidate, DossierOpened, dt.datetime]:
    """A random dossier opening and the instant the router recorded it."""
    channel, field_work = _pick(rng, _NEEDS)
    span = dt.timedelta(days=21 if field_work else 7 if channel != "email" else 2)
    contact = T0 - span * rng.random()
    email = f"tpl{n:06d}.bench@example.test" if rng.random() < 0.85 else None
    kind: Kind = "reclamation" if rng.random() < 0.05 else "demande"
    customer_ref = f"{100_000_000 + n}"
    event = opened(
        f"DOS-{rng.getrandbits(80):020X}",
        contact,
        channel,
        email=email,
        kind=kind,
        dossier_type=_pick(rng, _TYPES),
        customer_ref=customer_ref,
        field_work=field_work,
        region=_pick(rng, _REGIONS),
    )
    recorded_at = min(contact + dt.timedelta(seconds=rng.uniform(60, 900)), T0)
    return _Candidate(event.dossier_id, email, customer_ref, kind == "demande"), event, recorded_at


async def _record(
    recorder: tuple[SlaWatchService, _Clock], event: DossierOpened, at: dt.datetime
) -> None:
    service, clock = recorder
    clock.at = at
    outcome = await service.record(event)
    if outcome.outcome != "applied":
        raise RuntimeError(f"template {event.dossier_id} not applied: {outcome.outcome}")


async def _templates(
    recorders: list[tuple[SlaWatchService, _Clock]], store: Store, future: int, due: int
) -> tuple[list[_Candidate], list[_Candidate]]:
    """Record dossiers (one per service instance at a time, each on its own clock) until
    ``future`` have their next check after T0 and ``due`` have a holding mail due at T0
    (e-mail address, deadline ahead); the others are deleted."""
    rng = random.Random(4_12)
    kept: tuple[list[_Candidate], list[_Candidate]] = ([], [])
    n = 0
    while len(kept[0]) < future or len(kept[1]) < due:
        if n > 30 * (future + due):
            raise RuntimeError(f"could not draw the templates: {len(kept[0])}, {len(kept[1])}")
        batch = []
        for _ in range(25):
            drawn = [_candidate(rng, n + k) for k in range(len(recorders))]
            n += len(drawn)
            await asyncio.gather(
                *(_record(r, e, at) for r, (_, e, at) in zip(recorders, drawn, strict=True))
            )
            batch += [candidate for candidate, _, _ in drawn]
        columns = sla_dossiers.c
        query = sa.select(
            columns.dossier_id, columns.next_check_at, columns.holding_mail_at, columns.due_at
        ).where(columns.dossier_id.in_([c.dossier_id for c in batch]))
        async with store.engine.connect() as connection:
            rows = {row.dossier_id: row for row in (await connection.execute(query)).all()}
        drop = []
        for candidate in batch:
            row = rows[candidate.dossier_id]
            ahead = row.next_check_at is not None and row.next_check_at > T0
            mail_due = (
                not ahead
                and candidate.email is not None
                and candidate.demande
                and row.holding_mail_at is not None
                and row.holding_mail_at <= T0 < row.due_at
            )
            if ahead and len(kept[0]) < future:
                kept[0].append(candidate)
            elif mail_due and len(kept[1]) < due:
                kept[1].append(candidate)
            else:
                drop.append(candidate.dossier_id)
        if drop:
            async with store.transaction() as connection:
                await connection.execute(
                    sla_dossiers.delete().where(sla_dossiers.c.dossier_id.in_(drop))
                )
    return kept


async def _copy(
    store: Store, bucket: str, templates: list[_Candidate], copies: int, ref_base: int
) -> None:
    """``copies`` more dossiers from ``templates``, written by PostgreSQL in chunks."""
    rows = [
        {
            "bucket": bucket,
            "k": k,
            "dossier_id": t.dossier_id,
            "has_email": t.email is not None,
            "email_json": f'"reply_email":"{t.email}"' if t.email else '"reply_email":null',
            "ref_json": f'"customer_ref":"{t.customer_ref}"',
        }
        for k, t in enumerate(templates)
    ]
    async with store.transaction() as connection:
        await connection.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS bench_sla_templates (bucket text, k integer,"
                " dossier_id text, has_email boolean, email_json text, ref_json text)"
            )
        )
        await connection.execute(
            sa.text(
                "INSERT INTO bench_sla_templates VALUES"
                " (:bucket, :k, :dossier_id, :has_email, :email_json, :ref_json)"
            ),
            rows,
        )
    chunk = 100_000
    for first in range(1, copies + 1, chunk):
        last = min(copies, first + chunk - 1)
        values = {"first": first, "last": last, "bucket": bucket}
        values |= {"templates": len(templates), "ref_base": ref_base}
        async with store.transaction() as connection:
            await connection.execute(_COPY, values)


async def _count(store: Store, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with store.engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int(await connection.scalar(query) or 0)


async def _claim_ms(store: Store, limit: int, calls: int) -> tuple[float, int]:
    """Median milliseconds of ``claim_due(T0, limit)``, each in a rolled-back transaction."""
    timings: list[float] = []
    claimed = 0
    for _ in range(calls):
        async with store.engine.connect() as connection:
            transaction = await connection.begin()
            repo = SlaRepository(connection, postgres=store.is_postgres)
            started = time.perf_counter()
            claimed = len(await repo.claim_due(T0, limit))
            timings.append((time.perf_counter() - started) * 1000)
            await transaction.rollback()
    return statistics.median(timings), claimed


async def _group_at_end(bootstrap: str, group: str) -> None:
    """Commit the consumer group's offsets at the end of ``dossier.events.v1``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(DOSSIER_EVENTS, p)
            for p in sorted(consumer.partitions_for_topic(DOSSIER_EVENTS) or ())
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _TimedMessages(list[Any]):
    """The sink's message list, noting when each message arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, value: Any) -> None:
        self.times.append(time.monotonic())
        super().append(value)


async def _send_all(
    env: dict[str, str], tmp: Path, store: Store, sink: SmtpSink, mails: int, instances: int
) -> tuple[float, float, float]:
    """Start ``instances`` ``aiguillage run sla-watch`` processes; once every queued mail is
    sent, return mails/s from the first message received to the last, the highest peak
    RSS, and the processes' CPU milliseconds per mail from the first mail received on."""
    received = _TimedMessages()
    sink.messages = received
    processes = []
    for number in range(instances):
        log_dir = tmp / f"sla-watch-{number}"
        log_dir.mkdir()
        processes.append(ServiceProcess("sla-watch", env, log_dir).start())
    pids = [p.process.pid for p in processes if p.process is not None]
    deadline = time.monotonic() + mails / 50 + 120
    cpu_first: tuple[int, float] | None = None
    try:
        sent = sla_actions.c.status == "sent"
        while len(received) < mails or await _count(store, sla_actions, sent) < mails:
            if cpu_first is None and received:
                cpu_first = len(received), sum(_cpu_s(pid) for pid in pids)
            for process in processes:
                if process.process is not None and process.process.poll() is not None:
                    raise RuntimeError(f"sla-watch exited:\n{process.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(received)}/{mails} holding mails received")
            await asyncio.sleep(0.1)
        assert cpu_first is not None
        cpu_ms = (sum(_cpu_s(pid) for pid in pids) - cpu_first[1]) * 1000
        cpu_ms /= max(1, mails - cpu_first[0])
        rss = max(peak_rss_mb(pid) for pid in pids)
    finally:
        for process in processes:
            process.stop()
    ids = {message["Message-ID"] for message in sink.parsed()}
    if len(received) != mails or len(ids) != mails:
        raise RuntimeError(f"{len(received)} messages, {len(ids)} Message-IDs, {mails} expected")
    span = received.times[-1] - received.times[0]
    return (mails - 1) / span if span > 0 else float("nan"), rss, cpu_ms


async def run(
    dossiers: int = 1_000_000,
    due: int | None = None,
    templates: int | None = None,
    claims: int = 21,
    instances: int = 1,
) -> list[Figure]:
    """Measure sla_watch on ``dossiers`` open deadlines, ``due`` of them due; return figures.

    ``instances`` sla-watch processes send the holding mails together (1 by default).
    """
    due = max(10, dossiers // 100) if due is None else due
    templates = min(2_000, max(50, dossiers // 50)) if templates is None else templates
    future_templates = min(templates, dossiers - due)
    due_templates = min(due, max(10, templates // 4))
    configure_logging("WARNING", "json")  # the in-process service logs like the process
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker,
    ):
        async with scratch_postgres() as url:
            env = service_env(
                broker.bootstrap_servers,
                url,
                SLA_WATCH_MAIL_FROM=MAIL_FROM,
            )
            settings = ServiceSettings.model_validate(env)
            await ensure_topics(settings)
            store = create_store(url)
            await migrate(store)
            kafka = build_broker(settings, client_id="aiguillage-bench-sla")
            await kafka.start()
            relay = OutboxRelay(store, kafka)
            recorders = []
            for _ in range(8):
                clock = _Clock(T0)
                service = SlaWatchService(
                    store,
                    relay,
                    policy=SlaPolicy(),
                    clock=clock,
                    mail_domain="eau.example",
                    batch_size=SCHEDULER_BATCH,
                )
                recorders.append((service, clock))
            service, clock = recorders[0]
            try:
                ahead, due_now = await _templates(recorders, store, future_templates, due_templates)
                await _copy(store, "f", ahead, dossiers - due - len(ahead), 300_000_000)
                await _copy(store, "d", due_now, due - len(due_now), 600_000_000)
                async with store.engine.connect() as connection:
                    autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                    await autocommit.execute(sa.text("DROP TABLE bench_sla_templates"))
                    await autocommit.execute(sa.text("VACUUM (ANALYZE) sla_dossiers"))
                total = await _count(store, sla_dossiers)
                found = await _count(store, sla_dossiers, sla_dossiers.c.next_check_at <= T0)
                if (total, found) != (dossiers, due):
                    raise RuntimeError(f"{total} dossiers, {found} due: expected {dossiers}, {due}")

                batch_ms, batch_rows = await _claim_ms(store, SCHEDULER_BATCH, claims)
                all_ms, all_rows = await _claim_ms(store, due, max(3, claims // 3))

                clock.at = T0
                started = time.monotonic()
                while await service.tick():
                    pass
                settle_s = time.monotonic() - started
                queued = await _count(store, sla_actions, sla_actions.c.status == "pending")
                if queued != due:
                    raise RuntimeError(f"{queued} holding mails queued, {due} expected")
            finally:
                await kafka.stop()

            await _group_at_end(broker.bootstrap_servers, "sla-watch")
            clock_file = ClockFile(Path(tmp) / "clock", T0)
            sink = SmtpSink().start()
            env |= {
                "SLA_WATCH_CLOCK_FILE": str(clock_file.path),
                "SLA_WATCH_SMTP_HOST": sink.host,
                "SLA_WATCH_SMTP_PORT": str(sink.port),
            }
            try:
                mails_per_s, rss, cpu_ms = await _send_all(
                    env, Path(tmp), store, sink, due, instances
                )
            finally:
                sink.stop()
                await store.dispose()
    among = f"among {dossiers:,} open deadlines, {due:,} due"
    senders = "one sla-watch process" if instances == 1 else f"{instances} sla-watch processes"
    return [
        Figure(
            f"sla claim_due(T0, {batch_rows}) {among} (scheduler batch, SKIP LOCKED, median)",
            batch_ms,
            "ms",
            100,
            higher=False,
        ),
        Figure(
            f"sla claim_due(T0, {all_rows:,}) {among} (every due one at once, median)",
            all_ms,
            "ms",
            None,
            higher=False,
        ),
        Figure(
            f"sla scheduler tick(): due dossiers settled/s ({due:,} holding mails queued)",
            due / settle_s,
            "dossiers/s",
            None,
        ),
        Figure(
            f"sla holding mails/s, {senders} sending to a local SMTP sink ({due:,} mails)",
            mails_per_s,
            "mails/s",
            500,
        ),
        Figure(f"sla-watch peak RSS, {senders} sending the mails", rss, "MiB", None, False),
        Figure("sla-watch CPU time per holding mail sent (user+sys)", cpu_ms, "ms", None, False),
    ]


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for figure in asyncio.run(run(dossiers=count)):
        print(f"{figure.name}: {figure.measured:.1f} {figure.unit} (target {figure.target})")
