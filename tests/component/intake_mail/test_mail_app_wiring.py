"""``create_app`` on the in-memory broker: the lifespan runs the mailbox loop (Maildir drop folder,
the embedded demo's source), and with no mailbox configured the app idles instead of failing;
``aiguillage mail`` feeds the drop folder and lists acknowledgements."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from faststream import FastStream, TestApp
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from typer.testing import CliRunner

from schemas import IntakeItem
from schemas.topics import INTAKE_ITEMS
from services.common.store import create_store, migrate
from services.intake_mail.adapters.tables import mail_acknowledgements
from services.intake_mail.app import BackgroundJobs, broker_of, create_app
from services.intake_mail.cli import cli
from services.intake_mail.settings import IntakeMailSettings
from services.intake_mail.testing import form_mail


def _settings(tmp_path: Path, **extra: str) -> IntakeMailSettings:
    return IntakeMailSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "in-memory:9092",
            "KAFKA_CREATE_TOPICS": "false",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
            "LOG_FORMAT": "json",
            "attachments_dir": str(tmp_path / "attachments"),
            "poll_interval_s": "0.1",
            **extra,
        }
    )


async def test_the_app_reads_its_maildir_and_publishes_items(tmp_path: Path) -> None:
    maildir = tmp_path / "maildir"
    (maildir / "new").mkdir(parents=True)
    (maildir / "new" / "1700000000.M1.demo").write_bytes(form_mail(4))
    app = create_app(_settings(tmp_path, maildir=str(maildir)))
    broker = broker_of(app)
    received: list[IntakeItem] = []

    @broker.subscriber(INTAKE_ITEMS)
    async def on_item(message: KafkaMessage) -> None:
        received.append(IntakeItem.model_validate_json(message.body))

    async with TestKafkaBroker(broker), TestApp(app):
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
    assert [item.sender.customer_ref for item in received] == ["100000004"]
    assert list((maildir / ".Trait&AOk-s" / "cur").iterdir())
    assert not list((maildir / "new").iterdir())


async def test_without_a_mailbox_the_app_starts_and_idles(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    async with TestKafkaBroker(broker_of(app)), TestApp(app):
        await asyncio.sleep(0.05)
    assert not (tmp_path / "store.db").exists(), "nothing is opened without a mailbox"


def test_the_cli_feeds_the_drop_folder_and_lists_acknowledgements(tmp_path: Path) -> None:
    sample = tmp_path / "sample.eml"
    sample.write_bytes(form_mail(1))
    maildir = tmp_path / "drop"
    runner = CliRunner()
    dropped = runner.invoke(cli, ["drop", str(sample), str(sample), "--maildir", str(maildir)])
    assert dropped.exit_code == 0, dropped.output
    assert len(list((maildir / "new").iterdir())) == 2

    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    asyncio.run(_store_with_uncertain_acknowledgement(url))
    listed = runner.invoke(cli, ["acknowledgements"], env={"DATABASE_URL": url})
    assert listed.exit_code == 0, listed.output
    assert "mail-1  uncertain  1  <mail-1.ar@eau.example.org>" in listed.output
    assert "@example.test" not in listed.output, "no recipient address printed"


async def _store_with_uncertain_acknowledgement(url: str) -> None:
    store = create_store(url)
    await migrate(store)
    now = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    async with store.transaction() as connection:
        await connection.execute(
            mail_acknowledgements.insert().values(
                item_id="mail-1", message_id="<mail-1.ar@eau.example.org>",
                recipient="client@example.test", contact_date=now, status="uncertain",
                attempts=1, next_attempt_at=now, created_at=now,
            )
        )  # fmt: skip
    await store.dispose()


async def test_a_background_job_dying_unexpectedly_is_kept_to_fail_the_process() -> None:
    app = FastStream(KafkaBroker("in-memory:9092"))
    jobs = BackgroundJobs(app)

    async def broken() -> None:
        raise RuntimeError("a bug")

    async def sweeping() -> None:
        await asyncio.sleep(3600)

    jobs.start([broken(), sweeping()])
    await asyncio.sleep(0.01)
    await jobs.stop()
    await jobs.stop()
    assert [type(failure) for failure in jobs.failures] == [RuntimeError]
