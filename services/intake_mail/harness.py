"""intake_mail's application layer wired on FastStream's in-memory broker, for component tests.

``intake_harness`` wires ``MailIntake``, the ``Acknowledger`` and the
``MailboxLoop`` the way ``create_app`` does, over a Maildir, with a
``RecordingMailer`` and a clock the test moves, and collects what reaches each
topic. Test code only: nothing in the service imports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas import DeadLetter, IntakeItem, OutboundContact
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS, OUTBOUND_CONTACTS
from services.common.dlq import DeadLetterPublisher
from services.common.outbox import OutboxRelay
from services.common.store import Store
from services.intake_mail.acknowledgement_mail import AcknowledgementRenderer
from services.intake_mail.acknowledgements import Acknowledger
from services.intake_mail.adapters.attachments import FileAttachmentStore
from services.intake_mail.adapters.maildir import MaildirSource
from services.intake_mail.batches import Folders
from services.intake_mail.mailbox import MailboxLoop
from services.intake_mail.metrics import MailMetrics
from services.intake_mail.service import SERVICE, MailIntake
from services.intake_mail.testing import RecordingMailer

__all__ = ["FROM", "OWN", "START", "Harness", "ManualClock", "intake_harness"]

FROM = "Service Client <service-client@eau.example.org>"
OWN = ("service-client@eau.example.org", "noreply@eau.example.org")
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@dataclass
class ManualClock:
    """A clock the test moves by hand."""

    now: dt.datetime = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Harness:
    """The wired application layer and what it published."""

    root: Path
    store: Store
    source: MaildirSource
    intake: MailIntake
    acknowledger: Acknowledger
    loop: MailboxLoop
    mailer: RecordingMailer
    clock: ManualClock
    metrics: MailMetrics
    published: dict[str, list[bytes]] = field(default_factory=dict)

    @property
    def items(self) -> list[IntakeItem]:
        """What reached ``intake.items.v1``."""
        return [IntakeItem.model_validate_json(v) for v in self.published[INTAKE_ITEMS]]

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """What reached ``intake.dlq.v1``."""
        return [DeadLetter.model_validate_json(v) for v in self.published[DEAD_LETTERS]]

    @property
    def contacts(self) -> list[OutboundContact]:
        """What reached ``contacts.outbound.v1``."""
        return [OutboundContact.model_validate_json(v) for v in self.published[OUTBOUND_CONTACTS]]

    def drop(self, *mails: bytes) -> None:
        """Deliver mails into the Maildir's ``new/``, in order."""
        new = self.root / "new"
        new.mkdir(parents=True, exist_ok=True)
        start = sum(1 for _ in self.root.rglob("*.test*"))
        for offset, raw in enumerate(mails):
            (new / f"{1700000000 + start + offset:012d}.M{offset}.test").write_bytes(raw)

    def folder(self, name: str) -> list[bytes]:
        """The mails filed into a folder."""
        return [p.read_bytes() for p in sorted(self.source.folder_dir(name).glob("cur/*"))]

    def inbox(self) -> int:
        """How many mails are still waiting."""
        return sum(1 for sub in ("new", "cur") for _ in (self.root / sub).glob("*"))


def _collector(sink: list[bytes]) -> Callable[[KafkaMessage], Awaitable[None]]:
    async def collect(message: KafkaMessage) -> None:
        sink.append(message.body)

    return collect


@asynccontextmanager
async def intake_harness(store: Store, directory: Path) -> AsyncIterator[Harness]:
    """The harness over ``directory/maildir`` and a migrated ``store``."""
    broker = KafkaBroker("in-memory:9092")
    publisher = broker.publisher(INTAKE_ITEMS)
    collected: dict[str, list[bytes]] = {INTAKE_ITEMS: [], DEAD_LETTERS: [], OUTBOUND_CONTACTS: []}
    for topic, sink in collected.items():
        broker.subscriber(topic)(_collector(sink))
    clock, mailer, metrics = ManualClock(), RecordingMailer(), MailMetrics()
    async with TestKafkaBroker(broker):
        relay = OutboxRelay(store, broker)
        acknowledger = Acknowledger(
            store, mailer, AcknowledgementRenderer(FROM), relay,
            lease_s=60, max_attempts=3, metrics=metrics, clock=clock,
        )  # fmt: skip
        intake = MailIntake(
            store,
            items=publisher,
            dead_letters=DeadLetterPublisher(broker, SERVICE),
            attachments=FileAttachmentStore(directory / "attachments"),
            acknowledger=acknowledger,
            own_addresses=OWN,
            from_address=FROM,
            max_bytes=1_000_000,
            metrics=metrics,
            clock=clock,
        )
        folders = Folders()
        source = MaildirSource(
            directory / "maildir",
            account="maildir:test",
            folders=(folders.processed, folders.quarantine, folders.automatic),
        )
        loop = MailboxLoop(source, intake, batch_size=5, reconnect_max_s=0.05, metrics=metrics)
        yield Harness(
            directory / "maildir", store, source, intake, acknowledger, loop, mailer,
            clock, metrics, collected,
        )  # fmt: skip
