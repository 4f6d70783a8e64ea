"""structlog, configured once: JSON off a terminal, and no personal data in any event.

GDPR (procedure 7): logs carry ids, never names, addresses, e-mails or phone
numbers. ``scrub_personal_data`` drops fields that hold such data by name and
masks e-mail addresses and phone numbers found in any remaining string.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["PERSONAL_KEYS", "configure_logging", "get_logger", "scrub_personal_data"]

PERSONAL_KEYS = frozenset(
    {
        "address",
        "body",
        "email",
        "first_name",
        "firstname",
        "from",
        "last_name",
        "lastname",
        "mobile",
        "name",
        "phone",
        "postal_address",
        "recipient",
        "reply_email",
        "sender",
        "subject",
        "text",
        "to",
    }
)
_SECRET_WORDS = ("password", "passwd", "secret", "token", "authorization", "api_key", "credential")
# a match starts only where a token starts: tried from every character of one long token
# (a base64 blob in an exception message), the search took seconds (quadratic)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\w)(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\w)|\+\d{8,15}(?!\w)")
_REDACTED = "[redacted]"
_configured = False


def _mask(value: str) -> str:
    return _PHONE.sub(_REDACTED, _EMAIL.sub(_REDACTED, value))


def scrub_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop personal and secret fields, mask e-mails and phone numbers in the rest (procedure 7)."""
    for key in list(event_dict):
        lowered = key.lower()
        if lowered in PERSONAL_KEYS or any(word in lowered for word in _SECRET_WORDS):
            del event_dict[key]
            continue
        value = event_dict[key]
        if isinstance(value, str):
            event_dict[key] = _mask(value)
        elif isinstance(value, (list, tuple)):
            event_dict[key] = [_mask(v) if isinstance(v, str) else v for v in value]
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Set up structlog and the stdlib root logger once for the whole process."""
    global _configured
    if _configured:
        return
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # tracebacks become text first, so that the scrub masks what their messages
        # quote (a validation error's input, an address in a failed send)
        structlog.processors.format_exc_info,
        scrub_personal_data,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer, foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name]
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger; bind ids (item_id, dossier_id, topic), never personal data."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
