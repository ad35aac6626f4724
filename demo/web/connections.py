"""Connection hygiene: every connection must finish sending a request head within HEAD_TIMEOUT_S,
may not stall a body for longer than BODY_IDLE_TIMEOUT_S and must send the whole body within
limits.BODY_DEADLINE_S of its head (a byte every few seconds resets no deadline); an idle keep-alive connection
closes after KEEP_ALIVE_S; no request body may exceed one upload (Gradio's routes accept up to
1000 files of max_file_size each per request, its component server holds them all in memory);
a client that hangs up mid-request is one log line, not a traceback.

uvicorn's h11 protocol only times out idle keep-alive connections after a response: a client
that connected and sent nothing, half a request head, or half a body (slowloris) held its
connection, and the handler waiting on that body, forever.
"""
import asyncio
import json
import logging

import h11
from starlette.requests import ClientDisconnect, Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from demo.settings import BODY_DEADLINE, BODY_IDLE_TIMEOUT_S, HEAD_TIMEOUT_S, MAX_BODY_BYTES

# the whole request body must arrive within this many seconds after the head: a client trickling a
# byte every few seconds stays under the idle timeout but not under this
BODY_DEADLINE_S = float(BODY_DEADLINE.get())

log = logging.getLogger("uvicorn.error")  # uvicorn's format and level


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus read deadlines while a request is still arriving: one that each
    chunk moves (a stall) and, for a body, one that nothing moves (a trickle)."""

    read_timer: asyncio.TimerHandle | None = None
    body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm(HEAD_TIMEOUT_S)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm(BODY_IDLE_TIMEOUT_S)  # re-armed by every chunk: only a stall times out
            if self.body_timer is None:  # the body started: its deadline is not moved by more bytes
                self.body_timer = self.loop.call_later(BODY_DEADLINE_S, self._body_timed_out)
        elif state is h11.IDLE:
            if self.read_timer is None:  # a new head started: its deadline is not moved by more bytes
                self._arm(HEAD_TIMEOUT_S)
        else:
            self._disarm()  # request complete: the handler and its response take the time they need

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
        self.read_timer = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        for timer in (self.read_timer, self.body_timer):
            if timer is not None:
                timer.cancel()
        self.read_timer = self.body_timer = None

    def _read_timed_out(self) -> None:
        self.read_timer = None
        if self.flow.read_paused:  # we stopped reading (the handler is behind), not the client
            self._arm(BODY_IDLE_TIMEOUT_S)
            return
        self._close_if_reading()

    def _body_timed_out(self) -> None:
        self.body_timer = None
        if self.flow.read_paused:  # the handler is behind: give the client the time it is made to wait
            self.body_timer = self.loop.call_later(BODY_IDLE_TIMEOUT_S, self._body_timed_out)
            return
        self._close_if_reading()

    def _close_if_reading(self) -> None:
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()  # a handler waiting on the body gets http.disconnect


class LogClientDisconnect:
    """ASGI middleware: a client that hangs up while its request body is read is logged in one line
    (Starlette raises ClientDisconnect, which uvicorn logged as a full traceback)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            host, port = scope.get("client") or ("?", "?")
            log.warning("client %s:%s disconnected during %s %s", host, port, scope.get("method"), scope.get("path"))


class LimitBody:
    """ASGI middleware: a request body over `limit` bytes gets a 413 {"error"} at once, whether its
    Content-Length says so or a chunked body grows past it; the route sees a disconnect."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await self.refuse(send)
        received, started, refused = 0, False, False

        async def counted_receive():
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit and not refused:
                refused = True
                if not started:  # the route answered already: only cut it off
                    await self.refuse(send)
            return {"type": "http.disconnect"} if refused else message

        async def send_unless_refused(message) -> None:
            nonlocal started
            if not refused:
                started = True
                await send(message)

        try:
            await self.app(scope, counted_receive, send_unless_refused)
        except ClientDisconnect:
            if not refused:
                raise

    async def refuse(self, send) -> None:
        body = json.dumps({"error": f"request body larger than {self.limit // 2**20} MiB"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes `limit` bytes (nothing more is read)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
