"""The attachment store: files named by their SHA-256 under a directory (content-addressed).

Issue 4, "Parsing": attachments are written to the store and referenced by
hash, name, type and size; items never carry bytes. A file is written to a
temporary name, flushed to disk and renamed, so a crash never leaves a
truncated file under a valid hash; writing the same content twice is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from schemas import AttachmentRef
from services.intake_mail.domain import MailAttachment

__all__ = ["FileAttachmentStore"]


class FileAttachmentStore:
    """Content-addressed files: ``<root>/ab/cd/abcd…`` (the full SHA-256)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        """Where the bytes of ``sha256`` live."""
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def save(self, attachments: Sequence[MailAttachment]) -> tuple[AttachmentRef, ...]:
        """Store every attachment (idempotent by hash) and return their references, in order.

        Rule (issue 4, "Parsing": content-addressed attachment store).
        """
        if attachments:
            await asyncio.to_thread(self._write_all, attachments)
        return tuple(attachment.ref() for attachment in attachments)

    def _write_all(self, attachments: Sequence[MailAttachment]) -> None:
        for attachment in attachments:
            self._write(attachment)

    def _write(self, attachment: MailAttachment) -> None:
        target = self.path_for(attachment.sha256)
        if target.exists() and target.stat().st_size == attachment.size:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(attachment.data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
