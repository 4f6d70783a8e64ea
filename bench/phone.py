"""intake_phone end to end on tansu + PostgreSQL: webhook events/s, request latency, peak RSS.

``aiguillage run intake-phone`` runs as its own OS process: uvicorn on a free
loopback port, an HMAC-SHA256 secret per platform (a bearer token for
twilio) from its ``INTAKE_PHONE_…`` environment, a fresh PostgreSQL database,
the embedded tansu broker; every other setting at its default (settle 2 s,
sweep every 1 s, 64 recordings in flight, publish timeout 2 s).

The bench plays the telephony platform: ``calls`` realistic calls in our
generic JSON format (French mobile and landline callers, a few withheld, one
or two IVR choices, agents, wrap-up codes and notes; 8 % missed, 2 % wrong
numbers), each call's events POSTed in order, ``batch`` events per request
(1 by default: a CTI posting each event as it happens), signed with the
platform's HMAC secret, by ``concurrency`` HTTP clients at once (each a
plain HTTP/1.1 keep-alive connection, no HTTP library: httpx cost the bench
more CPU per request than the service spends) over loopback. Sending stops taking new calls after
``max_s`` seconds; a 503 or a broken connection is retried after 0.1 s and
counted (a retry is harmless: events are folded once by ``event_id``).

Figures: events/s accepted (HTTP 200, from the first request sent to the
last answered); events/s end to end (from the first request sent to the
moment the bench reads, on ``intake.items.v1``, the last item expected — one
per answered call in the perimeter, each checked present once; this includes
the settle period and the sweeper's and outbox pump's rounds); p50 and p99
request latency as the clients see it; the 503s and broken connections;
the service's peak RSS (VmHWM); the service's CPU time (user + system, from
``/proc``) per accepted event over the same span: what an event costs the
service, whatever else shares the machine's cores (the bench's own HTTP
clients, PostgreSQL, tansu); and the bench's own CPU time per accepted event
while sending (its clients share the same cores: when service +
clients + PostgreSQL need more than the machine has per event, the events/s
figures measure the machine, not the service).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer

from bench.common import Figure, peak_rss_mb, percentile, scratch_postgres, service_env
from schemas import IntakeItem
from schemas.topics import INTAKE_ITEMS
from services.common.embedded import EmbeddedBroker, free_port
from services.intake_phone.testing import SECRETS, TWILIO_TOKEN, PhoneProcess, signed_headers

__all__ = ["run"]

PARIS = ZoneInfo("Europe/Paris")
SERVICE_LINE = "09 72 10 80 80"
_WRAP_UPS = {
    "FUITE_COMPTEUR": "Fuite signalée au regard du compteur, eau sur le trottoir. Intervention "
    "demandée.",
    "FACTURE_CONTESTATION": "Conteste la facture du dernier semestre, consommation anormale "
    "selon lui. Demande un contrôle de l'index.",
    "RELEVE_INDEX": "Transmet son index de compteur par téléphone, absent lors du passage du "
    "releveur.",
    "MENSUALISATION": "Souhaite passer à la mensualisation à compter du prochain échéancier.",
    "EMMENAGEMENT": "Emménagement au 1er du mois, demande l'ouverture du contrat d'abonnement.",
    "RESILIATION": "Départ du logement, demande la résiliation et un relevé de sortie.",
    "QUALITE_EAU": "Eau trouble au robinet depuis ce matin dans tout l'immeuble.",
    "COUPURE_EAU": "Plus d'eau depuis deux heures, aucun avis de travaux reçu. Client inquiet.",
    "ECHEANCIER_PAIEMENT": "Difficultés de paiement, demande un échéancier pour la facture en "
    "cours.",
}


@dataclass
class _Call:
    """One call as the platform sends it: its request bodies, and whether it must be routed."""

    item_id: str
    bodies: list[bytes]
    routed: bool


@dataclass
class _Tally:
    """What the clients saw."""

    first_sent: float = float("inf")
    last_answered: float = 0.0
    events: int = 0
    busy: int = 0
    broken: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    done: list[_Call] = field(default_factory=list)


def _number(rng: random.Random) -> str:
    """A French mobile (70 %) or Lyon landline number, as a CTI shows it."""
    pairs = " ".join(f"{rng.randint(0, 99):02d}" for _ in range(3))
    if rng.random() < 0.7:
        return f"06 {rng.randint(10, 99)} {pairs}"
    return f"04 {rng.randint(72, 78)} {pairs}"


def _call(rng: random.Random, started: dt.datetime, batch: int) -> _Call:
    """The events of one call in our generic JSON format, in the order they happen."""
    call_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    hidden = rng.random() < 0.03
    at = started
    events: list[dict[str, Any]] = []

    def event(kind: str, after_s: float, **fields: Any) -> None:
        nonlocal at
        at += dt.timedelta(seconds=after_s)
        number = len(events) + 1
        events.append(
            {
                "version": 1,
                "event_id": f"evt-{call_id}-{number}",
                "call_id": call_id,
                "type": kind,
                "at": at.isoformat(timespec="seconds"),
                **fields,
            }
        )

    caller: dict[str, Any] = {"caller_hidden": True} if hidden else {"caller": _number(rng)}
    event("call.started", 0, direction="inbound", called=SERVICE_LINE, **caller)
    for _ in range(rng.choice((1, 1, 2))):
        event("call.ivr", rng.uniform(5, 15), ivr_choice=str(rng.randint(1, 4)))
    fate = rng.random()
    agent = f"agent-{rng.randint(1, 120):04d}"
    if fate < 0.08:  # hung up while waiting
        event("call.ended", rng.uniform(30, 300), answered=False)
        routed = False
    else:
        event("call.answered", rng.uniform(10, 240), agent=agent)
        duration = rng.randint(60, 900)
        event("call.ended", duration, agent=agent, answered=True, duration_s=duration)
        code, note = rng.choice(list(_WRAP_UPS.items()))
        if fate < 0.10:
            code, note = "FAUX_NUMERO", "Appel destiné au service des impôts."
        event(
            "call.wrap_up", rng.uniform(20, 180), agent=agent, wrap_up={"code": code, "note": note}
        )
        routed = code != "FAUX_NUMERO"
    if batch <= 1:
        bodies = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    else:
        bodies = [
            json.dumps(events[i : i + batch], ensure_ascii=False).encode()
            for i in range(0, len(events), batch)
        ]
    return _Call(f"phone:generic:{call_id}", bodies, routed)


def _calls(count: int, batch: int) -> list[_Call]:
    rng = random.Random(6)
    base = dt.datetime.now(PARIS).replace(microsecond=0) - dt.timedelta(hours=2)
    return [_call(rng, base + dt.timedelta(seconds=3600 * n / count), batch) for n in range(count)]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _events_in(body: bytes) -> int:
    return body.count(b'"event_id"')


class _Connection:
    """One keep-alive HTTP/1.1 connection to the webhook, one request at a time.

    What a platform's webhook worker does, without an HTTP library: httpx cost
    the bench more CPU per request (~1.2 ms) than the service spends on it, on
    the same two cores, so the figures measured the load generator.
    """

    def __init__(self, port: int) -> None:
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body``; the status and the response body (raises ``OSError`` when broken)."""
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._streams
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{self._port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            status_and_headers = await reader.readuntil(b"\r\n\r\n")
            lines = status_and_headers.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            content = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            await self.close()
            raise ConnectionError("connection closed mid-response") from error
        except OSError:
            await self.close()
            raise
        return int(lines[0].split(" ", 2)[1]), content

    async def close(self) -> None:
        """Close the connection (a later ``post`` opens a new one)."""
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _post(connection: _Connection, body: bytes, tally: _Tally) -> None:
    secret = SECRETS["generic"]
    headers = {"Content-Type": "application/json", **signed_headers(secret, body)}
    for _ in range(50):
        started = time.monotonic()
        tally.first_sent = min(tally.first_sent, started)
        try:
            status, content = await connection.post("/webhooks/generic", body, headers)
        except OSError:  # e.g. a keep-alive connection closed under our feet
            tally.broken += 1
            await asyncio.sleep(0.1)
            continue
        answered = time.monotonic()
        tally.latencies_ms.append((answered - started) * 1000)
        if status == 200:
            tally.last_answered = max(tally.last_answered, answered)
            tally.events += _events_in(body)
            return
        if status != 503:
            raise RuntimeError(f"webhook answered {status}: {content[:200]!r}")
        tally.busy += 1
        await asyncio.sleep(0.1)
    raise RuntimeError("webhook still busy or unreachable after 50 attempts")


async def _send(
    port: int, calls: list[_Call], concurrency: int, max_s: float, tally: _Tally
) -> None:
    """Post every call's requests in order, ``concurrency`` calls at a time, within ``max_s``.

    Each client has its own keep-alive connection, like a platform's webhook workers.
    """
    pending = iter(calls)
    stop_at = time.monotonic() + max_s

    async def worker() -> None:
        connection = _Connection(port)
        try:
            for call in pending:
                if time.monotonic() > stop_at:
                    return
                for body in call.bodies:
                    await _post(connection, body, tally)
                tally.done.append(call)
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _watch_items(bootstrap: str, seen: dict[str, float], copies: list[str]) -> None:
    """Note when each item first appears on ``intake.items.v1`` (runs until cancelled)."""
    consumer = AIOKafkaConsumer(
        INTAKE_ITEMS,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,  # as the services: tansu holds a fetch for the whole wait
    )
    await consumer.start()
    try:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.monotonic()
                for record in records:
                    item_id = IntakeItem.model_validate_json(record.value).item_id
                    if item_id in seen:
                        copies.append(item_id)
                    else:
                        seen[item_id] = now
    finally:
        await consumer.stop()


async def run(
    calls: int = 5_000, concurrency: int = 32, batch: int = 1, max_s: float = 180
) -> list[Figure]:
    """Measure intake_phone's webhook end to end; return its figures."""
    traffic = _calls(calls, batch)
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker,
    ):
        async with scratch_postgres() as url:
            port = free_port()
            env = service_env(
                broker.bootstrap_servers,
                url,
                INTAKE_PHONE_LISTEN_PORT=str(port),
                INTAKE_PHONE_GENERIC_HMAC_SECRET=SECRETS["generic"],
                INTAKE_PHONE_RINGOVER_HMAC_SECRET=SECRETS["ringover"],
                INTAKE_PHONE_ASTERISK_HMAC_SECRET=SECRETS["asterisk"],
                INTAKE_PHONE_TWILIO_BEARER_TOKEN=TWILIO_TOKEN,
            )
            phone = await PhoneProcess(env, Path(tmp)).start(timeout=60)
            seen: dict[str, float] = {}
            copies: list[str] = []
            watcher = asyncio.create_task(_watch_items(broker.bootstrap_servers, seen, copies))
            tally = _Tally()
            popen = phone.process.process
            assert popen is not None
            try:
                cpu_before = _cpu_s(popen.pid)
                clients_before = time.process_time()
                await _send(port, traffic, concurrency, max_s, tally)
                clients_ms = (time.process_time() - clients_before) * 1000
                expected = {call.item_id for call in tally.done if call.routed}
                deadline = time.monotonic() + 120
                while not expected <= seen.keys():
                    if watcher.done():
                        watcher.result()
                    if time.monotonic() > deadline:
                        missing = len(expected - seen.keys())
                        raise TimeoutError(f"{missing}/{len(expected)} items never arrived")
                    await asyncio.sleep(0.1)
                cpu_ms = (_cpu_s(popen.pid) - cpu_before) * 1000
                await asyncio.sleep(1)  # anything unexpected still on its way
                rss = peak_rss_mb(popen.pid)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                await phone.stop()
    unexpected = seen.keys() - expected
    if unexpected or copies:
        raise RuntimeError(f"{len(unexpected)} unexpected items, {len(copies)} duplicates")
    accepted_s = tally.last_answered - tally.first_sent
    end_to_end_s = max(seen[item_id] for item_id in expected) - tally.first_sent
    per_request = "1 event per request" if batch <= 1 else f"up to {batch} events per request"
    traffic_name = f"{len(tally.done):,} calls, {tally.events:,} events, {per_request}"
    traffic_name += f", {concurrency} clients"
    return [
        Figure(
            f"phone webhook events/s accepted ({traffic_name})",
            tally.events / accepted_s,
            "events/s",
            2_000,
        ),
        Figure(
            f"phone webhook events/s end to end, to the last of {len(expected):,} items on "
            f"intake.items.v1 (settle 2 s included)",
            tally.events / end_to_end_s,
            "events/s",
            2_000,
        ),
        Figure(
            "phone webhook p50 request latency",
            percentile(tally.latencies_ms, 50),
            "ms",
            None,
            False,
        ),
        Figure(
            "phone webhook p99 request latency",
            percentile(tally.latencies_ms, 99),
            "ms",
            None,
            False,
        ),
        Figure("phone webhook 503 answers (retried)", tally.busy, "requests", 0, higher=False),
        Figure("phone webhook broken connections (retried)", tally.broken, "requests", 0, False),
        Figure("intake-phone peak RSS", rss, "MiB", None, higher=False),
        Figure(
            "intake-phone CPU time per event (user+sys, webhook to item published)",
            cpu_ms / tally.events,
            "ms",
            None,
            higher=False,
        ),
        Figure(
            "bench HTTP clients CPU time per event (same machine, while sending)",
            clients_ms / tally.events,
            "ms",
            None,
            higher=False,
        ),
    ]


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    for figure in asyncio.run(run(calls=count)):
        print(f"{figure.name}: {figure.measured:.1f} {figure.unit} (target {figure.target})")
