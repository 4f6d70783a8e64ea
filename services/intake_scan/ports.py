"""What intake_scan's batch runner needs from the outside: a letter reader and an item sink."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from schemas import IntakeItem
from services.intake_scan.adapters.text import LetterRejected, LetterText

__all__ = ["ItemSink", "LetterReader"]


class LetterReader(Protocol):
    """Reads one letter file into its text, or its rejection (bad input is a value)."""

    async def read(self, path: Path) -> LetterText | LetterRejected:
        """The letter's text, or why it cannot be read."""
        ...

    def close(self) -> None:
        """Release the reader's resources."""
        ...


class ItemSink(Protocol):
    """Where items and dead letters go; each call returns once the broker acknowledged it."""

    async def publish_item(self, item: IntakeItem) -> None:
        """Publish one intake item, keyed by its partition key."""
        ...

    async def dead_letter(
        self, *, reason_code: str, reason: str, original_ref: str, payload: bytes | None = None
    ) -> None:
        """Publish one dead letter with its reason."""
        ...
