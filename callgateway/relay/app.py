"""The relay's ASGI app: `/twilio/relay` (Twilio's ConversationRelay WebSocket) on Starlette.

Served by uvicorn (`callgateway relay`, the Procfile's `relay`). One event loop holds every
session's socket; what blocks (the engine's turn: Redis, the database, an agent) runs in a
bounded thread pool, so thousands of mostly idle sessions cost a coroutine each, not a
thread each.

The handshake is refused (HTTP 403, before it is accepted, nothing written) unless it
carries a valid X-Twilio-Signature for the relay's public URL, checked with the webhooks'
validator and token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from twilio.request_validator import RequestValidator
from uvicorn.config import WS_PROTOCOLS

from callgateway.calls import log as call_log
from callgateway.config.settings import RELAY_PATH
from callgateway.relay.handshake import is_signed, signed_url
from callgateway.relay.session import Blocking, Session
from callgateway.wiring import bootstrap

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

# uvicorn's WebSocket protocol on the websockets library: its Sans-I/O implementation where
# this uvicorn has it (the older one is deprecated).
WS_PROTOCOL = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"

# Two pools for blocking work. A rules turn (and the setup's claim, an amendment) is a
# millisecond of CPU under the GIL: more threads add no throughput, only more contenders for
# the GIL against the event loop, which then answers every other session later (measured in
# bench/relay.py: p50 54 -> 13 ms at 2,000 sessions going from 32 threads to 4). A turn of a
# clinic whose agent calls a model waits on the network for most of a second: those get
# their own, larger pool (RELAY_THREADS), so a burst of them never queues the quick ones.
QUICK_THREADS = 4
DEFAULT_THREADS = 32


def create_relay_app(services: Services | None = None, threads: int | None = None) -> Starlette:
    services = services or bootstrap()
    validator = RequestValidator(services.settings.twilio_auth_token)
    quick = ThreadPoolExecutor(max_workers=QUICK_THREADS, thread_name_prefix="relay-quick")
    waiting = ThreadPoolExecutor(
        max_workers=threads or int(os.environ.get("RELAY_THREADS", DEFAULT_THREADS)),
        thread_name_prefix="relay-model",
    )

    def runner(pool: ThreadPoolExecutor) -> Blocking:
        async def run(fn: Any, *args: Any) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(pool, functools.partial(fn, *args))

        return run

    async def relay(ws: WebSocket) -> None:
        url = signed_url(services.settings.relay_url, ws.scope.get("query_string", b""))
        if not is_signed(validator, url, ws.headers.get("x-twilio-signature", "")):
            log.warning("relay handshake refused: bad signature")
            await ws.close(code=1008)  # before accept: the server answers HTTP 403
            return
        await ws.accept()
        await Session(ws, services, runner(quick), runner(waiting)).run()

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # The engine's transcript lines reach the call log through the journal's drainer.
        call_log.start_background_writer(services)
        try:
            yield
        finally:
            for pool in (quick, waiting):
                pool.shutdown(wait=True, cancel_futures=False)

    app = Starlette(
        routes=[WebSocketRoute(RELAY_PATH, relay), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
