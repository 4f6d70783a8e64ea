"""The IMAP mailbox (aioimaplib): TLS, STARTTLS or plain; UID SEARCH, BODY.PEEK[], UID MOVE, IDLE.

Issue 4, "IMAP source". Every foreign error (aioimaplib, socket, TLS,
timeout) is translated here into ``MailboxUnavailable``; the mailbox loop
then reconnects with backoff. Mail is never deleted: it is moved with UID MOVE,
or, on servers without MOVE, copied, flagged ``\\Deleted`` and removed from
the mailbox with UID EXPUNGE (UIDPLUS) only; without UIDPLUS the copied mail
stays flagged in the mailbox, where the pending search (UNDELETED) skips it.
Folder names travel in modified UTF-7 ("Traités" is ``Trait&AOk-s``).

The mailbox loop prepares a batch while the previous one settles, so search,
fetch and move may be asked for at once: they take turns (one lock), as
aioimaplib mixes up the responses of a command sent while a MOVE is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aioimaplib import IMAP4, STOP_WAIT_SERVER_PUSH, AioImapException, Command, quoted

from services.common.logging import get_logger
from services.intake_mail.adapters.imap_responses import (
    parse_fetch,
    parse_search,
    response_code,
    uid_set,
    uidvalidity,
)
from services.intake_mail.adapters.imap_utf7 import quote_mailbox
from services.intake_mail.errors import MailboxMisconfigured, MailboxUnavailable
from services.intake_mail.ports import FetchedMail, FolderState
from services.intake_mail.settings import IntakeMailSettings, Security

__all__ = ["FETCH_BYTES", "ImapSource"]

FETCH_BYTES = 64 * 1024 * 1024
"""Bodies read by one fetch at most (at least one mail): the batch's memory bound."""

log = get_logger(__name__)
_FOREIGN = (AioImapException, OSError, TimeoutError, EOFError)
_LOST = [b"aiguillage: connection lost"]


class ImapSource:
    """One IMAP account and mailbox, with the folders mail is moved to."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security,
        user: str,
        password: str,
        mailbox: str,
        folders: Sequence[str],
        account: str,
        timeout: float = 30.0,
        use_idle: bool = True,
        ca_file: Path | None = None,
    ) -> None:
        self.account = account
        self._host, self._port, self._security = host, port, security
        self._user, self._password = user, password
        self._mailbox = mailbox
        self._folders = tuple(dict.fromkeys(folders))
        self._timeout = timeout
        self._use_idle = use_idle
        self._ca_file = ca_file
        self._client: IMAP4 | None = None
        self._lost = False
        self._turn = asyncio.Lock()  # one command (sequence) on the connection at a time

    @classmethod
    def from_settings(cls, settings: IntakeMailSettings) -> ImapSource:
        """The source the settings describe."""
        return cls(
            host=settings.imap_host,
            port=settings.resolved_imap_port(),
            security=settings.imap_security,
            user=settings.imap_user,
            password=settings.imap_secret(),
            mailbox=settings.mailbox,
            folders=(
                settings.processed_folder,
                settings.quarantine_folder,
                settings.automatic_folder,
            ),
            account=settings.account_label(),
            timeout=settings.imap_timeout_s,
            use_idle=settings.idle,
            ca_file=settings.imap_ca_file,
        )

    async def open(self) -> FolderState:
        """Connect, log in, create the target folders when missing, select the mailbox."""
        await self.close()
        validity = None
        try:
            async with self._translated("connect"):
                client = await self._connect()
                for folder in self._folders:
                    await self._ensure_folder(client, folder)
                response = await client.select(quote_mailbox(self._mailbox))
                self._check(response, "SELECT", misconfigured=True)
            validity = uidvalidity(response.lines)
            if validity is None:
                raise MailboxUnavailable("SELECT answered without UIDVALIDITY")
        finally:
            if validity is None:
                await self.close()
        return FolderState(folder=self._mailbox, uidvalidity=validity)

    async def pending(self, limit: int) -> list[str]:
        """UIDs still in the mailbox (not flagged deleted), oldest first, at most ``limit``."""
        async with self._turn, self._translated("search"):
            response = await self._require().uid_search("UNDELETED", charset=None)
        self._check(response, "UID SEARCH")
        return parse_search(response.lines)[:limit]

    async def fetch(self, uids: Sequence[str], max_bytes: int) -> list[FetchedMail]:
        """Sizes first; then ``BODY.PEEK[]`` (never marks seen) of the mails under the limit.

        At most ``FETCH_BYTES`` of bodies (at least one mail) per call: a batch of large
        mails (scanned attachments) is read over several passes instead of at once (100
        mails of 25 MB held twice over, by the IMAP client's buffer and here, killed the
        pod; its restart fetched the same batch). Mails left out are not returned: they
        stay in the mailbox for the next batch, as do mails gone between the two fetches.
        """
        if not uids:
            return []
        async with self._turn, self._translated("fetch"):
            client = self._require()
            sizes = await client.uid("fetch", uid_set(uids), "(UID RFC822.SIZE)")
            self._check(sizes, "UID FETCH size")
            by_uid = {r.uid: r.size or 0 for r in parse_fetch(sizes.lines) if r.uid}
            small: list[str] = []
            budget = FETCH_BYTES
            for uid in uids:
                size = by_uid.get(uid)
                if size is None or size > max_bytes:
                    continue
                if small and size > budget:
                    break
                small.append(uid)
                budget -= size
            bodies = {}
            if small:
                response = await client.uid(
                    "fetch", uid_set(small), "(UID INTERNALDATE BODY.PEEK[])"
                )
                self._check(response, "UID FETCH body")
                bodies = {r.uid: r for r in parse_fetch(response.lines)}
        fetched: list[FetchedMail] = []
        for uid in uids:
            if uid not in by_uid:
                continue  # gone meanwhile (another client moved it)
            if by_uid[uid] > max_bytes:
                fetched.append(FetchedMail(uid, None, by_uid[uid], None))
                continue
            record = bodies.get(uid)
            if record is None:
                continue  # left for the next batch, or gone between the two fetches
            raw = record.body or b""
            fetched.append(FetchedMail(uid, raw, len(raw), record.arrived_at))
        return fetched

    async def move(self, uids: Sequence[str], folder: str) -> None:
        """UID MOVE, else COPY + STORE \\Deleted + UID EXPUNGE (UIDPLUS only): never a delete."""
        if not uids:
            return
        target, numbers = quote_mailbox(folder), uid_set(uids)
        async with self._turn, self._translated("move"):
            client = self._require()
            if client.has_capability("MOVE"):
                self._check(await client.uid("move", numbers, target), "UID MOVE")
                return
            self._check(await client.uid("copy", numbers, target), "UID COPY")
            flagged = await client.uid("store", numbers, "+FLAGS.SILENT", r"(\Deleted)")
            self._check(flagged, "UID STORE")
            if client.has_capability("UIDPLUS"):
                self._check(await client.uid("expunge", numbers), "UID EXPUNGE")

    async def wait_for_mail(self, timeout: float) -> None:
        """IDLE until the server announces new mail (EXISTS) or ``timeout``; else just sleep."""
        client = self._require()
        if not (self._use_idle and client.has_capability("IDLE")):
            await asyncio.sleep(timeout)
            return
        deadline = time.monotonic() + timeout
        async with self._translated("idle"):
            idle = await client.idle_start(timeout=timeout)
            try:
                while client.has_pending_idle() and not self._lost:
                    remaining = max(deadline - time.monotonic(), 0.0) + self._timeout
                    push = await client.wait_server_push(timeout=remaining)
                    if push == STOP_WAIT_SERVER_PUSH or any(b"EXISTS" in line for line in push):
                        break
            finally:
                if self._lost:
                    idle.cancel()
                else:
                    if client.has_pending_idle():
                        client.idle_done()
                    await asyncio.wait_for(idle, self._timeout)
        if self._lost:
            raise MailboxUnavailable("connection lost during IDLE")

    async def close(self) -> None:
        """Log out (best effort) and drop the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        if not self._lost:
            with contextlib.suppress(*_FOREIGN):
                await asyncio.wait_for(client.logout(), min(self._timeout, 5.0))
        transport = client.protocol.transport
        if transport is not None:
            transport.close()

    # -- connection -------------------------------------------------------

    async def _connect(self) -> IMAP4:
        self._lost = False
        context = self._ssl_context() if self._security != "plain" else None
        client = IMAP4(
            self._host,
            self._port,
            timeout=self._timeout,
            conn_lost_cb=self._on_connection_lost,
            ssl_context=context if self._security == "tls" else None,
        )
        self._client = client
        await client.wait_hello_from_server()
        if self._security == "starttls" and context is not None:
            await self._starttls(client, context)
        response = await client.login(quoted(self._user), self._password)
        self._check(response, "LOGIN", misconfigured=True)
        await asyncio.wait_for(client.protocol.capability(), self._timeout)
        return client

    async def _starttls(self, client: IMAP4, context: ssl.SSLContext) -> None:
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise MailboxMisconfigured("the server does not offer STARTTLS")
        command = Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await asyncio.wait_for(protocol.execute(command), self._timeout)
        self._check(response, "STARTTLS", misconfigured=True)
        loop = asyncio.get_running_loop()
        protocol.transport = await loop.start_tls(
            protocol.transport, protocol, context, server_hostname=self._host
        )
        await asyncio.wait_for(protocol.capability(), self._timeout)

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)

    async def _ensure_folder(self, client: IMAP4, folder: str) -> None:
        wire = quote_mailbox(folder)
        listed = await client.list('""', wire)
        self._check(listed, "LIST")
        if len(listed.lines) > 1:
            return
        created = await client.create(wire)
        if created.result != "OK" and response_code(created.lines) != "ALREADYEXISTS":
            self._check(created, "CREATE", misconfigured=True)
        await client.subscribe(wire)
        log.info("imap.folder_created", account=self.account, folder=folder)

    def _on_connection_lost(self, _error: Exception | None) -> None:
        self._lost = True
        client = self._client
        if client is not None:
            client.protocol.idle_queue.put_nowait(_LOST)

    def _require(self) -> IMAP4:
        if self._client is None or self._lost:
            raise MailboxUnavailable("not connected")
        return self._client

    @staticmethod
    def _check(response: object, what: str, *, misconfigured: bool = False) -> None:
        result = getattr(response, "result", None)
        if result == "OK":
            return
        lines = getattr(response, "lines", [])
        code = response_code(lines) if lines else ""
        error = MailboxMisconfigured if misconfigured else MailboxUnavailable
        raise error(f"{what} answered {result} {code}".strip())

    @contextlib.asynccontextmanager
    async def _translated(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except _FOREIGN as exc:
            raise MailboxUnavailable(f"{what}: {type(exc).__name__}") from exc
