"""`regulars run` with only WhatsApp configured: the webhook is served on WEB_HOST:WEB_PORT
and checks the verify token and the signature."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from pathlib import Path

import aiohttp

from bot.app import run
from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_until_listening(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError("the web server did not start")


async def test_run_serves_the_whatsapp_webhook_with_its_checks(tmp_path: Path) -> None:
    port = _free_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'wa.db'}",
        business_config=ROOT / "business.example.toml",
        telegram_bot_token=None,
        whatsapp_phone_id="123456789",
        whatsapp_token="wa-token",
        whatsapp_app_secret="app-secret",
        whatsapp_verify_token="verify-me",
        whatsapp_api_url="http://127.0.0.1:9/",  # never reached in this test
        web_host="127.0.0.1",
        web_port=port,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run(settings, stop=stop))
    base = f"http://127.0.0.1:{port}/webhook/whatsapp"
    try:
        await _wait_until_listening(base)
        async with aiohttp.ClientSession() as http:
            handshake = {"hub.mode": "subscribe", "hub.challenge": "42917"}
            async with http.get(base, params={**handshake, "hub.verify_token": "verify-me"}) as ok:
                assert (ok.status, await ok.text()) == (200, "42917")
            async with http.get(base, params={**handshake, "hub.verify_token": "nope"}) as bad:
                assert bad.status == 403
            body = b'{"object": "whatsapp_business_account", "entry": []}'
            async with http.post(base, data=body) as unsigned:
                assert unsigned.status == 401
            async with http.post(
                base, data=body, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}
            ) as forged:
                assert forged.status == 403
            signature = hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
            async with http.post(
                base, data=body, headers={"X-Hub-Signature-256": f"sha256={signature}"}
            ) as signed:
                assert signed.status == 200
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=10)
