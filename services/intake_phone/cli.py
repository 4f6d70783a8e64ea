"""``aiguillage phone``: feed the bundled samples to a running webhook; count calls in the store."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Annotated

import typer

__all__ = ["cli"]

cli = typer.Typer(help="Telephony intake (intake_phone).", no_args_is_help=True)


@cli.command("replay-samples")
def replay_samples(
    url: Annotated[
        str | None, typer.Option(help="Webhook base URL (default: the configured listen address)")
    ] = None,
    platform: Annotated[
        list[str] | None, typer.Option(help="Only these platforms (repeatable)")
    ] = None,
) -> None:
    """POST every bundled sample call to the webhook, signed with the configured credentials.

    Uses ``INTAKE_PHONE_<PLATFORM>_HMAC_SECRET`` (else the bearer token) of
    each platform; a platform with neither is skipped. Prints one line per
    payload: the sample name and the HTTP status.
    """
    from services.intake_phone.auth import sign
    from services.intake_phone.settings import IntakePhoneSettings
    from services.intake_phone.testing import sample, sample_calls

    settings = IntakePhoneSettings()
    base = url or f"http://{settings.listen_host}:{settings.listen_port}"
    for call in sample_calls():
        if platform and call.platform not in platform:
            continue
        secret, token = settings.credentials(call.platform)
        if secret is None and token is None:
            typer.echo(f"{call.platform}: no credentials configured, skipped")
            continue
        for name in call.payloads:
            body = sample(name)
            headers = {"Content-Type": "application/octet-stream"}
            if secret is not None:
                headers[settings.signature_header] = sign(secret.get_secret_value(), body)
            elif token is not None:
                headers["Authorization"] = f"Bearer {token.get_secret_value()}"
            typer.echo(f"{name}: {_post(f'{base}/webhooks/{call.platform}', body, headers)}")


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("the URL must be http(s)")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@cli.command("stats")
def stats() -> None:
    """Open calls, and emitted calls by perimeter reason (routed or counted), from the store."""
    from services.common.store import create_store
    from services.intake_phone.adapters.calls import CallRepository
    from services.intake_phone.settings import IntakePhoneSettings

    async def _counts() -> dict[str, int]:
        store = create_store(IntakePhoneSettings().resolved_database_url())
        try:
            async with store.transaction() as connection:
                return await CallRepository(connection, postgres=store.is_postgres).counts()
        finally:
            await store.dispose()

    for name, count in asyncio.run(_counts()).items():
        typer.echo(f"{name}\t{count}")
