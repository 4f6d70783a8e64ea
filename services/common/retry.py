"""Bounded exponential backoff on store outages (tenacity)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from services.common.logging import get_logger

__all__ = ["is_transient_store_error", "retry_store"]

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
    return isinstance(error, OSError | ConnectionError)


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
