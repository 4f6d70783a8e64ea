"""Bounded exponential backoff on store outages (tenacity)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
from aiokafka.errors import KafkaError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from services.common.logging import get_logger

__all__ = ["OUTAGE", "STORE_OUTAGE", "is_transient_store_error", "retry_store"]

# What a background loop logs and retries next round: the store or the broker is
# unavailable right now (a lost connection, a pool with no free connection under load).
STORE_OUTAGE: tuple[type[Exception], ...] = (sa.exc.DBAPIError, sa.exc.TimeoutError, OSError)
OUTAGE: tuple[type[Exception], ...] = (*STORE_OUTAGE, KafkaError)

T = TypeVar("T")
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
log = get_logger(__name__)


def is_transient_store_error(error: BaseException) -> bool:
    """True for errors a retry can fix: lost connections, lock timeouts, a lost race."""
    if isinstance(error, sa.exc.IntegrityError):
        return True  # another instance did it first: the retry sees its result
    if isinstance(error, sa.exc.DBAPIError):
        # PostgreSQL: serialization failure, deadlock, lock timeout, shutdown, connection.
        state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if state in _RETRYABLE_SQLSTATES or str(state or "").startswith("08"):
            return True
        return error.connection_invalidated or isinstance(
            error, sa.exc.OperationalError | sa.exc.InterfaceError
        )
    # sa.exc.TimeoutError: no pooled connection came free in time (load), not a bug
    return isinstance(error, OSError | ConnectionError | sa.exc.TimeoutError)


async def retry_store(operation: Callable[[], Awaitable[T]], *, max_seconds: float) -> T:
    """Run ``operation``, retrying transient store errors with jittered backoff up to a bound."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(is_transient_store_error),
        stop=stop_after_delay(max_seconds),
        wait=wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "store.retrying",
            attempt=state.attempt_number,
            error=type(state.outcome.exception()).__name__ if state.outcome else None,
        ),
    ):
        with attempt:
            return await operation()
    raise AssertionError("unreachable")  # pragma: no cover
