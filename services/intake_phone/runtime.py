"""Long-running parts of intake_phone: the embedded uvicorn server, the sweeper, the outbox pump.

uvicorn runs inside the FastStream app's event loop (no second process and
no signal handlers of its own: FastStream owns SIGINT/SIGTERM and stops it).
The outbox pump publishes right after a commit that added rows (the service
wakes it) and every ``interval`` otherwise, so what a crash left in the
outbox is published after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import Callable, Generator, Sequence

import uvicorn
from faststream.kafka import KafkaBroker
from starlette.types import ASGIApp

from services.common.lifecycle import CrashWatch, prepare_infrastructure
from services.common.logging import get_logger
from services.common.outbox import OutboxRelay
from services.common.retry import OUTAGE, STORE_OUTAGE
from services.common.store import Store, create_store
from services.common.version import SERVICE_VERSION
from services.intake_phone.dead_letters import SERVICE
from services.intake_phone.errors import ListenFailed
from services.intake_phone.metrics import PhoneMetrics
from services.intake_phone.service import CallPolicy, PhoneService
from services.intake_phone.settings import IntakePhoneSettings
from services.intake_phone.webhook import Webhooks

__all__ = ["HttpServer", "OutboxPump", "PhoneRuntime", "run_sweeper"]

log = get_logger(__name__)
SWEEP_BATCH = 200


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # FastStream handles the signals and stops this server


class HttpServer:
    """uvicorn serving an ASGI app on a socket bound before start-up (bind errors are clear)."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.host = host
        self.port = port
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and serve; return once uvicorn accepts connections."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio disables Nagle's algorithm only on sockets that
        # say they are TCP, and accepted sockets inherit this one's protocol. With
        # Nagle on, uvicorn's second write (the body after the head) waited for the
        # client's delayed ACK: 40 ms added to every keep-alive request.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as error:
            sock.close()
            raise ListenFailed(self.host, self.port, error) from error
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the webhook server stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("webhook.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Stop accepting, finish the requests in progress (bounded), return."""
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None


class OutboxPump:
    """Publishes the outbox rows this process commits as soon as told, and sweeps periodically."""

    def __init__(self, relay: OutboxRelay, interval_s: float) -> None:
        self._relay = relay
        self._interval_s = interval_s
        self._wake = asyncio.Event()
        self._committed: list[int] = []

    def wake(self, ids: Sequence[int]) -> None:
        """Publish these just-committed outbox rows soon (by id: no scan of the queue)."""
        self._committed += ids
        self._wake.set()

    async def run_forever(self) -> None:
        """Publish committed rows when woken; every interval, sweep whatever is pending.

        The sweep (rows left by a crash, a failed publication or another
        instance) runs on time even when commits keep waking the pump.
        """
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self._interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_sweep - loop.time()))
            self._wake.clear()
            if self._committed:
                ids, self._committed = self._committed, []
                await self._relay.publish_committed(ids)
            if loop.time() >= next_sweep:
                await self.flush()
                next_sweep = loop.time() + self._interval_s

    async def flush(self) -> int:
        """Publish everything pending; 0 when Kafka or the store is unavailable right now."""
        try:
            return await self._relay.flush()
        except OUTAGE as error:
            # the rows stay in the outbox: the next sweep publishes them
            log.warning("outbox.flush_failed", error=type(error).__name__)
            return 0


async def run_sweeper(
    service: PhoneService,
    interval_s: float,
    retention: dt.timedelta,
    *,
    purge_every_s: float = 3600,
) -> None:
    """Emit due calls every ``interval_s`` and forget old emitted calls hourly (issue 6, 4.1)."""
    loop = asyncio.get_running_loop()
    last_purge = float("-inf")
    while True:
        try:
            while len(await service.sweep(limit=SWEEP_BATCH)) >= SWEEP_BATCH:
                continue
            if loop.time() - last_purge >= purge_every_s:
                await service.purge_emitted(retention)
                last_purge = loop.time()
        except STORE_OUTAGE as error:
            log.warning("calls.sweep_failed", error=type(error).__name__)
        await asyncio.sleep(interval_s)


class PhoneRuntime:
    """What the app starts and stops around the broker, in the right order.

    ``open`` (lifespan, before the broker): store, topics, migrations, the
    service and the webhook server (requests only touch the store).
    ``start_background`` (after the broker started): sweeper and outbox pump.
    ``stop_background`` (before the broker stops): stop the webhook, let
    recordings finish, stop the loops, publish what is pending. ``close``
    (lifespan exit): the same if not done yet, then the store.
    """

    def __init__(
        self,
        settings: IntakePhoneSettings,
        broker: KafkaBroker,
        metrics: PhoneMetrics,
        *,
        on_crash: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._metrics = metrics
        # a sweeper or pump that died would leave calls accepted and never emitted
        self.crashes = CrashWatch(on_crash)
        self._store: Store | None = None
        self._service: PhoneService | None = None
        self._webhooks: Webhooks | None = None
        self._http: HttpServer | None = None
        self._pump: OutboxPump | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> PhoneService:
        """Prepare the store and topics, build the service, start serving webhooks."""
        settings = self._settings
        self._store = store = create_store(settings.resolved_database_url())
        await prepare_infrastructure(settings, store)
        relay = OutboxRelay(store, self._broker, service=SERVICE)
        self._pump = OutboxPump(relay, settings.outbox_interval_s)
        self._service = PhoneService(
            store,
            CallPolicy.from_settings(settings),
            self._metrics,
            on_outbox=self._pump.wake,
            retry_max_s=settings.db_retry_max_s,
            max_batch=settings.max_batch,
            writers=settings.writers,
        )
        self._webhooks = Webhooks(settings, self._service, self._metrics)
        self._http = HttpServer(self._webhooks.app, settings.listen_host, settings.listen_port)
        await self._http.start()
        return self._service

    async def start_background(self) -> None:
        """Start the sweeper and the outbox pump (the broker is connected now)."""
        if self._service is None or self._pump is None:
            raise RuntimeError("PhoneRuntime.open() did not run")
        retention = dt.timedelta(days=self._settings.emitted_retention_days)
        self._tasks = [
            self.crashes.watch(
                asyncio.create_task(
                    run_sweeper(self._service, self._settings.sweep_interval_s, retention),
                    name="call-sweeper",
                )
            ),
            self.crashes.watch(asyncio.create_task(self._pump.run_forever(), name="outbox-pump")),
        ]
        log.info("service.started", service=SERVICE, version=SERVICE_VERSION)

    async def stop_background(self) -> None:
        """Stop taking webhooks, finish what is in flight, publish what is pending."""
        if self._http is not None:
            await self._http.stop()
            self._http = None
        if self._webhooks is not None:
            await self._webhooks.gate.drain(5.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tasks and self._pump is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pump.flush(), 5.0)
        self._tasks = []

    async def close(self) -> None:
        """Stop everything still running and release the store."""
        await self.stop_background()
        if self._store is not None:
            await self._store.dispose()
            self._store = None
