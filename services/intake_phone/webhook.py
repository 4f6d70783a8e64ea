"""The telephony webhook (Starlette, served by uvicorn inside the service).

``POST /webhooks/{platform}`` (``generic``, ``ringover``, ``twilio``,
``asterisk``) with the platform's raw body, authenticated per platform
(:mod:`.auth`). Answers, in the order they are decided:

====  ====================================================================
404   unknown platform
413   body over ``INTAKE_PHONE_MAX_BODY_BYTES`` (nothing recorded)
401   missing or wrong credentials, no detail (nothing recorded)
400   malformed payload: ``{"error": reason_code, "message": reason}``,
      after its ``DeadLetter`` is recorded (published on ``intake.dlq.v1``)
200   ``{"calls", "events", "duplicates", "late", "ignored"}``: the events
      are durably folded into their calls (unknown event types: ignored,
      counted, still 200)
503   with ``Retry-After``: the store did not record the events within
      ``INTAKE_PHONE_PUBLISH_TIMEOUT_S``, or too many requests are being
      recorded; the platform retries and duplicates are harmless
====  ====================================================================

No request ever waits on Kafka: items and dead letters go through the
outbox. ``GET /healthz`` says the server is up; ``GET /metrics`` is the
Prometheus text of :class:`..metrics.PhoneMetrics`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.logging import get_logger
from services.common.retry import STORE_OUTAGE
from services.intake_phone.auth import WebhookAuth
from services.intake_phone.domain import PLATFORMS, PayloadRejected, normalise
from services.intake_phone.errors import RecordingBusy
from services.intake_phone.metrics import PhoneMetrics
from services.intake_phone.service import PhoneService
from services.intake_phone.settings import IntakePhoneSettings

__all__ = ["Gate", "Webhooks"]

T = TypeVar("T")
# the store cannot take the recording right now: 503 + Retry-After, the platform retries
_BUSY: tuple[type[Exception], ...] = (RecordingBusy, *STORE_OUTAGE)
log = get_logger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Gate:
    """Bounds how long a request waits for the store, and how many record at once.

    The work runs as its own task: past ``timeout`` the request gets 503 but
    the work goes on and commits (the platform's retry is then a duplicate,
    folded away); cancelling a transaction half-way would gain nothing.
    """

    def __init__(self, timeout_s: float, max_inflight: int) -> None:
        self._timeout_s = timeout_s
        self._max_inflight = max_inflight
        self._tasks: set[asyncio.Task[object]] = set()

    @property
    def inflight(self) -> int:
        """Recordings still running (some may belong to requests already answered 503)."""
        return len(self._tasks)

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()``; raise ``RecordingBusy`` when it is not done in time or when full."""
        if len(self._tasks) >= self._max_inflight:
            raise RecordingBusy("too many webhook requests being recorded")
        task: asyncio.Task[T] = asyncio.ensure_future(work())
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._timeout_s)
        except TimeoutError as error:
            raise RecordingBusy("the store did not record the events in time") from error

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("webhook.recording_failed", error=type(error).__name__)

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) for recordings still running, at shutdown."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


class Webhooks:
    """The webhook endpoints of one service instance, as a Starlette app (``.app``)."""

    def __init__(
        self,
        settings: IntakePhoneSettings,
        service: PhoneService,
        metrics: PhoneMetrics,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._settings = settings
        self._service = service
        self._metrics = metrics
        self._clock = clock
        self._auth = WebhookAuth(settings)
        self.gate = Gate(settings.publish_timeout_s, settings.max_inflight)
        self.app = Starlette(
            routes=[
                Route("/webhooks/{platform}", self.receive, methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
            ]
        )
        for platform in PLATFORMS:
            if not self._auth.configured(platform):
                log.info("webhook.platform_disabled", platform=platform)

    async def receive(self, request: Request) -> Response:
        """Authenticate, normalise and record one platform webhook (issue 6, procedure 5.1.1)."""
        platform = str(request.path_params["platform"])
        if platform not in PLATFORMS:
            return self._done("unknown", _error(404, "unknown_platform", "no such platform"))
        body = await _read_body(request, self._settings.max_body_bytes)
        if body is None:
            limit = self._settings.max_body_bytes
            return self._done(platform, _error(413, "payload_too_large", f"over {limit} bytes"))
        if not self._auth.verify(platform, request.headers, body):
            return self._done(platform, Response(status_code=401))
        try:
            normalised = normalise(platform, body, received_at=self._clock())
        except PayloadRejected as rejected:
            return await self._reject(platform, body, rejected)
        self._service.count_ignored(platform, normalised)
        try:
            outcome = await self.gate.run(lambda: self._service.ingest(normalised.events))
        except _BUSY as error:
            return self._busy(platform, error)
        answer = {
            "calls": outcome.calls,
            "events": outcome.folded,
            "duplicates": outcome.duplicates,
            "late": outcome.late,
            "ignored": len(normalised.ignored),
        }
        return self._done(platform, JSONResponse(answer))

    async def _reject(self, platform: str, body: bytes, rejected: PayloadRejected) -> Response:
        try:
            await self.gate.run(
                lambda: self._service.dead_letter(platform, body, rejected, source="webhook")
            )
        except _BUSY as error:
            return self._busy(platform, error)
        status = 413 if rejected.reason_code == "payload_too_large" else 400
        return self._done(platform, _error(status, rejected.reason_code, rejected.reason))

    def _busy(self, platform: str, error: Exception) -> Response:
        log.warning("webhook.busy", platform=platform, error=type(error).__name__)
        response = _error(503, "busy", "events not recorded in time, retry later")
        response.headers["Retry-After"] = str(self._settings.retry_after_s)
        return self._done(platform, response)

    def _done(self, platform: str, response: Response) -> Response:
        self._metrics.requests.labels(platform, str(response.status_code)).inc()
        return response

    async def health(self, request: Request) -> Response:
        """Liveness of the webhook server, with the number of recordings in flight."""
        del request
        return JSONResponse({"status": "ok", "inflight": self.gate.inflight})

    async def metrics(self, request: Request) -> Response:
        """The service's counters in the Prometheus text format."""
        del request
        return Response(self._metrics.render(), media_type=CONTENT_TYPE_LATEST)
