"""Dossier rules that only the store can prove: the one-open-dossier-per-type index,
the customer lock, what a requalification does to dunning, the directory's candidates
(SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Collection

import pytest
import sqlalchemy as sa

from schemas import IntakeItem, PostalAddress, SenderHints
from schemas.dossiers import CloseDossier, RequalifyDossier
from schemas.topics import ACCOUNT_ACTIONS, DOSSIER_EVENTS
from services.common.outbox import OutboxRelay
from services.common.store import Store
from services.common.store.tables import dossiers, outbox
from services.router.adapters.directory import DirectoryRepository
from services.router.adapters.repository import DossierRepository
from services.router.adapters.tables import customers
from services.router.errors import RequalifyConflict
from services.router.rules_loader import load_rules
from services.router.service import RouterService

T0 = dt.datetime(2026, 2, 3, 10, tzinfo=dt.UTC)
REF = "300000001"
BILL = "Je conteste ma facture, le montant est beaucoup trop élevé."
CANCEL_BILL = "J'annule ma demande concernant ma facture, le problème est résolu."
BILL_AGAIN = "Bonjour, je ne comprends pas le montant de ma facture du mois dernier."
MOVING = "Je souhaite résilier mon contrat, je déménage le mois prochain."
_numbers = itertools.count()


class _Relay:
    """Publication is not under test here: the rows stay in the outbox to be read."""

    async def publish_committed(self, ids: Collection[int]) -> bool:
        return True


def _service(store: Store) -> RouterService:
    relay: OutboxRelay = _Relay()  # type: ignore[assignment]
    return RouterService(store, load_rules(), relay, clock=lambda: T0, retry_max_s=1.0)


def _item(text: str, minutes: int = 0) -> IntakeItem:
    n = next(_numbers)
    return IntakeItem(
        item_id=f"email:store-{n}",
        channel="email",
        received_at=T0 + dt.timedelta(minutes=minutes),
        source_ref=f"INBOX/{n}",
        sender=SenderHints(customer_ref=REF),
        text=text,
    )


def _command(kind: type[CloseDossier | RequalifyDossier], dossier_id: str, **fields: object):  # type: ignore[no-untyped-def]
    n = next(_numbers)
    return kind.model_validate(
        {"command_id": f"cmd-{n}", "dossier_id": dossier_id, "issued_at": T0, "issued_by": "agent"}
        | fields
    )


async def _dossiers(store: Store) -> dict[str, tuple[str, str]]:
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            sa.select(dossiers.c.dossier_id, dossiers.c.dossier_type, dossiers.c.status)
        )
        return {r.dossier_id: (r.dossier_type, r.status) for r in rows}


async def _published(store: Store, topic: str) -> list[dict[str, object]]:
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id)
        )
        return [json.loads(r.payload) for r in rows]


async def test_a_request_cancelled_and_asked_again_in_one_batch(store: Store) -> None:
    """5.1.7.2 a then 4.6 in one transaction: the old dossier ends before the new one of
    its type opens (it used to break the one-open-dossier index, and the batch was retried
    for ever)."""
    router = _service(store)
    [opened] = await router.route([_item(BILL)])
    assert opened.outcome == "opened"

    outcomes = await router.route([_item(CANCEL_BILL, 5), _item(BILL_AGAIN, 6)])

    assert [o.outcome for o in outcomes] == ["cancelled", "opened"]
    assert outcomes[0].dossier_id == opened.dossier_id
    found = await _dossiers(store)
    assert found[str(opened.dossier_id)] == ("FACTURE", "cancelled")
    assert found[str(outcomes[1].dossier_id)] == ("FACTURE", "open")


async def test_a_request_opened_cancelled_and_asked_again_within_one_batch(store: Store) -> None:
    router = _service(store)
    outcomes = await router.route([_item(BILL), _item(CANCEL_BILL, 1), _item(BILL_AGAIN, 2)])
    assert [o.outcome for o in outcomes] == ["opened", "cancelled", "opened"]
    found = await _dossiers(store)
    assert found[str(outcomes[0].dossier_id)] == ("FACTURE", "cancelled")
    assert found[str(outcomes[2].dossier_id)] == ("FACTURE", "open")


async def test_a_requalification_into_a_type_already_open_goes_to_the_dlq(store: Store) -> None:
    """Retrying can never apply it (one open dossier per customer and type): it used to
    be retried and redelivered for ever, holding its partition of dossier.commands.v1."""
    router = _service(store)
    bill, moving = await router.route([_item(BILL), _item(MOVING, 1)])
    assert moving.dossier_id is not None

    with pytest.raises(RequalifyConflict) as raised:
        await router.apply(
            _command(RequalifyDossier, moving.dossier_id, dossier_type="FACTURE", reason="x")
        )

    assert raised.value.reason_code == "requalify_conflict"
    assert str(bill.dossier_id) in raised.value.reason
    found = await _dossiers(store)
    assert found[moving.dossier_id] == ("RESILIATION", "open")
    assert [e["type"] for e in await _published(store, DOSSIER_EVENTS)] == [
        "dossier_opened",
        "dossier_opened",
    ]


async def test_dunning_follows_a_requalification_until_closure(store: Store) -> None:
    """4.13: FACTURE blocks dunning; requalified as INFO it must unblock (it used to stay
    blocked for ever), and closing the INFO dossier then unblocks nothing more."""
    router = _service(store)
    [bill] = await router.route([_item(BILL)])
    assert bill.dossier_id is not None

    await router.apply(
        _command(RequalifyDossier, bill.dossier_id, dossier_type="INFO", reason="simple question")
    )
    await router.apply(_command(CloseDossier, bill.dossier_id))

    actions = [a["action"] for a in await _published(store, ACCOUNT_ACTIONS)]
    assert actions == ["block_dunning", "unblock_dunning"]


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_a_command_waits_for_the_batch_that_holds_its_customer(store: Store) -> None:
    """A close arriving while a batch holds the customer's lock applies after the batch,
    on what the batch left: here a cancellation, so the close is ignored (it used to close
    the dossier under the batch, which then turned it into 'cancelled' after 'closed')."""
    router = _service(store)
    [bill] = await router.route([_item(BILL)])
    assert bill.dossier_id is not None
    async with store.engine.connect() as connection:
        key = await connection.scalar(
            sa.select(dossiers.c.customer_key).where(dossiers.c.dossier_id == bill.dossier_id)
        )

    async with store.transaction() as batch:
        await DossierRepository(batch, postgres=True).lock_customer(str(key))
        closing = asyncio.create_task(router.apply(_command(CloseDossier, bill.dossier_id)))
        await asyncio.sleep(0.5)
        assert not closing.done()  # waits for the customer's lock
        await batch.execute(
            dossiers.update()
            .where(dossiers.c.dossier_id == bill.dossier_id)
            .values(status="cancelled", closed_at=T0)
        )

    effects = await asyncio.wait_for(closing, 10)
    assert effects.outcome == "ignored: dossier cancelled"
    assert effects.events == ()


async def test_an_exact_match_is_never_crowded_out_by_a_busy_postcode(store: Store) -> None:
    """A letter signed with a name in a postcode of many accounts used to fill the
    candidates' cap, and a batched e-mail sender known by address became unidentified."""
    rows = [
        {
            "customer_ref": f"4{n:08d}",
            "first_name": "Alix",
            "last_name": f"Nom{n}",
            "email": None,
            "address_line": f"{n} rue de la Gare",
            "postcode": "75015",
            "city": "Paris",
            "updated_at": T0,
        }
        for n in range(30)
    ]
    rows.append(
        {
            "customer_ref": "500000001",
            "first_name": "Camille",
            "last_name": "Exemple",
            "email": "camille.exemple@example.test",
            "address_line": "1 place Bellecour",
            "postcode": "69001",
            "city": "Lyon",
            "updated_at": T0,
        }
    )
    async with store.transaction() as connection:
        await connection.execute(customers.insert(), rows)
    letter = SenderHints(
        last_name="Martin", postal_address=PostalAddress(lines=("3 rue Z",), postcode="75015")
    )
    mail = SenderHints(email="camille.exemple@example.test")

    async with store.engine.connect() as connection:
        found = await DirectoryRepository(connection).candidates([letter, mail], limit=10)

    refs = [entry.customer_ref for entry in found]
    assert "500000001" in refs
    assert len([ref for ref in refs if ref.startswith("4")]) == 10
    assert len(set(refs)) == len(refs)
