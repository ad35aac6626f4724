"""Every place the server relies on a framework's internals, in one module.

Each is a gap the frameworks leave for an app mounted as this one is, and each can move on an
upgrade: tests/test_patches.py checks what every patch relies on and fails naming the installed
version when it moves.

- uvicorn: its h11 protocol times out idle keep-alive connections only after a response, so a
  client that sent nothing, half a head or half a body held its connection (and the handler waiting
  on that body) forever. TimedH11Protocol subclasses the private H11Protocol to add read deadlines.
- Gradio: `mount_gradio_app` never "launches" the Blocks, and Gradio checks a payload's file path
  against its upload folder only for launched apps. `check_event_inputs` sets the launched flag
  and runs a check on every event's raw inputs before Gradio's own preprocessing.
- Gradio: the per-session state store's capacity is a `launch()` argument, which a mounted app
  never calls; `bound_sessions` sets the attribute launch() would.
- uvicorn: a request still open when the shutdown grace period ends (an open page's event stream
  never ends) is cancelled, and logged with a 40-line traceback of the cancellation.
  `quiet_cancelled_requests` makes that one line.
- Gradio: an event no page defines (`/gradio_api/call/<unknown name>`, a `fn_index` past the last)
  raised KeyError or FnIndexInferError out of `route_utils.get_fn`: a 500 with a traceback.
  `answer_unknown_events` makes it a 404 naming what was asked for.
- Gradio: an output picture is written to a path named by its content's hash, truncated and
  written again each time the same picture comes back; a browser still fetching it then read a
  shorter file, and the server logged h11's "Too little data for declared Content-Length" with a
  traceback. `write_pictures_once` writes each content once, atomically.
"""
import asyncio
import json
import logging
import os
import threading
from pathlib import Path

import gradio as gr
import h11
from fastapi import HTTPException
from gradio import processing_utils, route_utils
from uvicorn.protocols.http.h11_impl import H11Protocol

from demo.settings import BODY_DEADLINE, BODY_IDLE_TIMEOUT_S, HEAD_TIMEOUT_S, MAX_HEAD_BYTES
from demo.web.refusals import refused

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
        if self.conn.their_state is h11.IDLE and self._head_too_long(data):
            return self._refuse_head()
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

    def _head_too_long(self, data: bytes) -> bool:
        """The head so far (h11's unread bytes and these) holds no blank line within MAX_HEAD_BYTES.
        h11's own limit covers a head that arrives in pieces, not one that arrives whole."""
        head = self.conn.trailing_data[0] + data
        return len(head) > MAX_HEAD_BYTES and b"\r\n\r\n" not in head[:MAX_HEAD_BYTES + 4]

    def _refuse_head(self) -> None:
        self._answer_and_close(b"431 Request Header Fields Too Large", "request head (the request line and its "
                               f"headers) larger than {MAX_HEAD_BYTES // 2**10} KiB")

    def _answer_and_close(self, status: bytes, message: str) -> None:
        """A JSON {"error"} written straight to the socket (no handler has answered), then close."""
        body = json.dumps({"error": message}).encode()
        self.transport.write(b"HTTP/1.1 %s\r\ncontent-type: application/json\r\n"
                             b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (status, len(body), body))
        self._disarm()
        self.transport.close()

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
        if self.conn.their_state is h11.SEND_BODY:
            self._close_if_reading(f"the request body stalled: nothing arrived for {BODY_IDLE_TIMEOUT_S:g} s")
        else:
            self._close_if_reading(f"the request head did not arrive within {HEAD_TIMEOUT_S:g} s")

    def _body_timed_out(self) -> None:
        self.body_timer = None
        if self.flow.read_paused:  # the handler is behind: give the client the time it is made to wait
            self.body_timer = self.loop.call_later(BODY_IDLE_TIMEOUT_S, self._body_timed_out)
            return
        self._close_if_reading(f"the request body did not arrive within {BODY_DEADLINE_S:g} s")

    def _close_if_reading(self, why: str) -> None:
        """A request still arriving is answered 408 and closed (a handler waiting on its body gets
        http.disconnect); an idle keep-alive connection, nothing of a request sent, is only closed."""
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY) or self.transport.is_closing():
            return
        started = self.conn.their_state is h11.SEND_BODY or self.conn.trailing_data[0]
        if not started:
            self.transport.close()
            return
        host, port = self.client or ("?", "?")
        log.warning("gave up on a request from %s:%s: %s", host, port, why)
        if self.cycle is not None and self.conn.their_state is h11.SEND_BODY:
            self.cycle.scope["tinyzoo.timed_out"] = True  # the handler's disconnect is ours, not the client's
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # no answer has started
            self._answer_and_close(b"408 Request Timeout", f"{why}: send the whole request at once")
        else:
            self.transport.close()


class _CancelledAtShutdown(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            record.msg, record.args, record.exc_info = "a request still open at shutdown was cancelled", (), None
        return True


def quiet_cancelled_requests() -> None:
    """uvicorn's "Exception in ASGI application" for a request its shutdown cancelled: one line, no traceback."""
    logging.getLogger("uvicorn.error").addFilter(_CancelledAtShutdown())


def check_event_inputs(blocks: gr.Blocks, *checks) -> None:
    """Each `check(block_fn, inputs)` runs on every event's raw inputs before Gradio preprocesses them
    (it raises to refuse); Gradio's own upload-folder check, which only launched apps get, is on. A
    component's own refusal while preprocessing (a dropdown value not among its choices) is the user's
    input: it stays a message on the page, and the log gets one line instead of a traceback."""
    blocks.has_launched = True
    preprocess_data = blocks.preprocess_data

    async def checked_preprocess_data(block_fn, inputs, *args, **kwargs):
        for check in checks:
            check(block_fn, inputs)
        try:
            return await preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error as e:
            e.print_exception = False
            refused(e.message)
            raise

    blocks.preprocess_data = checked_preprocess_data


def answer_unknown_events() -> None:
    """An api_name or fn_index that names no event -> 404 {"detail"} (Gradio's own shape), not a 500."""
    get_fn = route_utils.get_fn
    if getattr(get_fn, "answers_unknown", False):  # a second app in this process
        return

    def known_fn(blocks, api_name, body):
        try:
            return get_fn(blocks, api_name, body)
        except (route_utils.FnIndexInferError, KeyError):
            asked = f"fn_index {body.fn_index!r}" if body.fn_index is not None else f"api_name {str(api_name)[:60]!r}"
            raise HTTPException(404, f"no event has {asked}: GET /gradio_api/info lists the API's endpoints") from None

    known_fn.answers_unknown = True
    route_utils.get_fn = known_fn


def bound_sessions(blocks: gr.Blocks, capacity: int) -> None:
    """Keep per-session state for at most `capacity` sessions (Gradio's default is 10,000; every API
    caller is a session, ~130 KB each under load)."""
    blocks.state_session_capacity = capacity


def write_pictures_once() -> None:
    """Gradio's save_pil_to_cache, but a picture already in the cache is not written again, and a new
    one appears whole (written aside, then renamed): a file being served is never truncated."""

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = processing_utils.encode_pil_to_bytes(img, format)
        path = (Path(cache_dir) / processing_utils.hash_bytes(data) / f"{name}.{format}").resolve()
        if not path.is_file():
            path.parent.mkdir(exist_ok=True, parents=True)
            aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            aside.write_bytes(data)
            os.replace(aside, path)
        return str(path)

    processing_utils.save_pil_to_cache = save_pil_to_cache
