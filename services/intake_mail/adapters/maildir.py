"""A Maildir drop folder as the mail source: for the embedded demo only (issue 4).

The same pass as IMAP reads it: mails in ``new/`` and ``cur/`` are pending,
oldest first; moving renames the file into the Maildir++ subfolder of the
target (``.Trait&AOk-s/cur/`` for "Traités", as Dovecot names it), so the
drop folder can later be served by a real IMAP server. The UID of a mail is
the unique part of its file name; UIDVALIDITY is constant.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

from services.intake_mail.adapters.imap_utf7 import encode_mailbox
from services.intake_mail.errors import MailboxUnavailable
from services.intake_mail.ports import FetchedMail, FolderState

__all__ = ["MAILDIR_UIDVALIDITY", "MaildirSource"]

MAILDIR_UIDVALIDITY = 1


def _key(path: Path) -> str:
    return path.name.split(":", 1)[0]


class MaildirSource:
    """Reads a Maildir (``new/``, ``cur/``) and moves mail into Maildir++ subfolders."""

    def __init__(self, root: Path, *, account: str, folders: Sequence[str]) -> None:
        self.root = root
        self.account = account
        self._folders = tuple(folders)
        self._paths: dict[str, Path] = {}

    async def open(self) -> FolderState:
        """Create the Maildir and the target subfolders when missing."""
        try:
            for folder in ("", *(self.folder_dir(f).name for f in self._folders)):
                for sub in ("tmp", "new", "cur"):
                    (self.root / folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MailboxUnavailable(f"maildir: {type(exc).__name__}") from exc
        return FolderState(folder="INBOX", uidvalidity=MAILDIR_UIDVALIDITY)

    async def pending(self, limit: int) -> list[str]:
        """Mails in ``new/`` and ``cur/``, oldest first (Maildir file names start with a time)."""
        try:
            files = sorted(
                (path for sub in ("new", "cur") for path in (self.root / sub).iterdir()),
                key=lambda path: path.name,
            )
        except OSError as exc:
            raise MailboxUnavailable(f"maildir: {type(exc).__name__}") from exc
        self._paths = {_key(path): path for path in files if path.is_file()}
        return list(self._paths)[:limit]

    async def fetch(self, uids: Sequence[str], max_bytes: int) -> list[FetchedMail]:
        """Read each file (size only when over ``max_bytes``); modification time is arrival."""
        return await asyncio.to_thread(self._read_all, uids, max_bytes)

    def _read_all(self, uids: Sequence[str], max_bytes: int) -> list[FetchedMail]:
        fetched = []
        for uid in uids:
            path = self._paths.get(uid)
            if path is None or not path.exists():
                continue
            stat = path.stat()
            arrived = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
            raw = path.read_bytes() if stat.st_size <= max_bytes else None
            fetched.append(FetchedMail(uid, raw, stat.st_size, arrived))
        return fetched

    async def move(self, uids: Sequence[str], folder: str) -> None:
        """Rename each file into ``<root>/.<folder>/cur/`` (never a delete)."""
        target = self.folder_dir(folder) / "cur"
        target.mkdir(parents=True, exist_ok=True)
        for uid in uids:
            path = self._paths.get(uid)
            if path is not None and path.exists():
                name = path.name if ":2," in path.name else f"{path.name}:2,"
                os.replace(path, target / name)

    async def wait_for_mail(self, timeout: float) -> None:
        """Poll: sleep ``timeout`` seconds."""
        await asyncio.sleep(timeout)

    async def close(self) -> None:
        """Nothing to close."""

    def folder_dir(self, folder: str) -> Path:
        """The Maildir++ directory of a folder (its name in modified UTF-7, as Dovecot has it)."""
        return self.root / f".{encode_mailbox(folder).replace('/', '.')}"
