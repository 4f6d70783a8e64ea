"""Helpers for tests, demos and benchmarks of intake_phone: samples, signing, calls as events.

The samples under ``services/intake_phone/samples/`` are realistic payloads
of each platform (invented people and numbers). :func:`sample_calls` groups
them by call, in the order a platform sends them, with the call's expected
outcome, so an end-to-end test or ``aiguillage phone replay-samples`` can
feed them to a webhook or to ``telephony.raw.v1``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from services.common.store import Store
from services.common.store.tables import outbox
from services.intake_phone.auth import sign

if TYPE_CHECKING:
    import httpx

__all__ = [
    "SAMPLES",
    "SECRETS",
    "TWILIO_TOKEN",
    "Clock",
    "PhoneProcess",
    "SampleCall",
    "auth_headers",
    "outbox_payloads",
    "post_webhook",
    "sample",
    "sample_calls",
    "shuffled_generic_call",
    "signed_headers",
]

SAMPLES = Path(__file__).with_name("samples")


def sample(name: str) -> bytes:
    """The bytes of one bundled sample payload."""
    return (SAMPLES / name).read_bytes()


def signed_headers(
    secret: str, body: bytes, header: str = "X-Aiguillage-Signature"
) -> dict[str, str]:
    """Headers that authenticate ``body`` with the platform's HMAC secret."""
    return {header: sign(secret, body)}


@dataclass(frozen=True, slots=True)
class SampleCall:
    """The sample payloads of one call, in sending order, and what the call must become."""

    platform: str
    call_id: str
    payloads: tuple[str, ...]
    routed: bool
    reason: str

    @property
    def item_id(self) -> str:
        """The item id the call is emitted under."""
        return f"phone:{self.platform}:{self.call_id}"


def sample_calls() -> tuple[SampleCall, ...]:
    """Every bundled call sample with its expected perimeter decision (no own numbers set)."""
    return (
        SampleCall(
            "generic",
            "3f6c2a9e-1b7d-4c05-8e2f-9a4d6b1c7e30",
            ("generic_call.json", "generic_wrap_up.json", "generic_unknown_type.json"),
            True,
            "answered",
        ),
        SampleCall(
            "generic",
            "b2e8d4f1-6a3c-4e97-a0d5-71c3f9e2b864",
            ("generic_hidden_caller_ended.json",),
            False,
            "unanswered",
        ),
        SampleCall(
            "ringover",
            "8461026573912345678",
            (
                "ringover_ringing.json",
                "ringover_ivr_response_code.json",
                "ringover_answered.json",
                "ringover_hangup.json",
                "ringover_record_available.json",
                "ringover_comments_updated.json",
                "ringover_sms_received.json",
            ),
            True,
            "answered",
        ),
        SampleCall(
            "ringover", "8461026573912399001", ("ringover_missed.json",), False, "unanswered"
        ),
        SampleCall(
            "ringover", "8461026573912400777", ("ringover_voicemail.json",), True, "voicemail"
        ),
        SampleCall(
            "twilio",
            "CA7d3e9b1f2a4c6e8d0b5f7a9c1e3d5b7f",
            (
                "twilio_ringing.txt",
                "twilio_gather_digits.txt",
                "twilio_agent_leg_in_progress.txt",
                "twilio_queued_unknown_status.txt",
                "twilio_completed.txt",
            ),
            True,
            "answered",
        ),
        SampleCall(
            "twilio",
            "CAe5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5",
            ("twilio_anonymous_no_answer.txt",),
            False,
            "unanswered",
        ),
        SampleCall("asterisk", "1736870400.84", ("asterisk_answered_call.txt",), True, "answered"),
        SampleCall(
            "asterisk",
            "1736874005.97",
            ("asterisk_abandoned_in_ivr.txt",),
            False,
            "abandoned_in_ivr",
        ),
    )


def shuffled_generic_call(call_id: str, *, seed: int, duplicates: int = 3) -> list[bytes]:
    """The generic sample call under ``call_id``, one event per payload, shuffled, with repeats."""
    events = json.loads(sample("generic_call.json"))
    for event in events:
        event["call_id"] = call_id
    payloads = [json.dumps(event).encode() for event in events]
    rng = random.Random(seed)
    payloads += [rng.choice(payloads) for _ in range(duplicates)]
    rng.shuffle(payloads)
    return payloads


async def post_webhook(
    client: httpx.AsyncClient, platform: str, body: bytes, secret: str
) -> httpx.Response:
    """POST one payload to the platform's webhook, signed with ``secret``."""
    return await client.post(
        f"/webhooks/{platform}", content=body, headers=signed_headers(secret, body)
    )


class Clock:
    """A clock the test moves (``PhoneService(clock=...)``)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += dt.timedelta(seconds=seconds)


async def outbox_payloads(store: Store, topic: str) -> list[str]:
    """Payloads written to the outbox for ``topic``, in order."""
    async with store.engine.connect() as connection:
        query = sa.select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id)
        return [str(row.payload) for row in (await connection.execute(query)).all()]


SECRETS = {"generic": "generic-secret", "ringover": "ringover-secret", "asterisk": "ami-secret"}
"""HMAC secrets of the test environment (``INTAKE_PHONE_<PLATFORM>_HMAC_SECRET``)."""
TWILIO_TOKEN = "twilio-token"  # noqa: S105 (a test credential)
"""Bearer token of the test environment for twilio."""


def auth_headers(platform: str, body: bytes) -> dict[str, str]:
    """Credentials of the test environment for one platform's request."""
    if platform == "twilio":
        return {"Authorization": f"Bearer {TWILIO_TOKEN}"}
    return signed_headers(SECRETS[platform], body)


class PhoneProcess:
    """The service process and an HTTP client on its webhook port."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        import httpx

        from services.common.testing import ServiceProcess

        self.port = int(env["INTAKE_PHONE_LISTEN_PORT"])
        self.process = ServiceProcess("intake-phone", env, log_dir)
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    async def start(self, timeout: float = 20) -> PhoneProcess:
        """Launch and wait until the webhook answers ``/healthz``."""
        import httpx

        self.process.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if (await self.client.get("/healthz")).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            popen = self.process.process
            if (popen is not None and popen.poll() is not None) or time.monotonic() > deadline:
                raise AssertionError(f"intake-phone did not start:\n{self.process.output()}")
            await asyncio.sleep(0.1)

    async def post(self, platform: str, body: bytes) -> httpx.Response:
        """POST a payload with the platform's valid credentials."""
        headers = auth_headers(platform, body)
        return await self.client.post(f"/webhooks/{platform}", content=body, headers=headers)

    async def metric(self, line_start: str) -> float:
        """The value of the first ``/metrics`` line starting with ``line_start`` (0 if none)."""
        text = (await self.client.get("/metrics")).text
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(line_start)
        ]
        return sum(values)

    def kill(self) -> None:
        """SIGKILL, like a crash."""
        self.process.kill()

    async def stop(self) -> int | None:
        """SIGTERM and wait for a graceful exit."""
        await self.client.aclose()
        return self.process.stop()
