"""Request bodies: no body may exceed one upload (Gradio's routes accept up to 1000 files of
max_file_size each per request, its component server holds them all in memory); a route reads
its body through `read_body`, which stops at its own limit; a client that hangs up mid-request is
one log line, not a traceback. The read deadlines (head, a stalled body, a trickled body) are
patches.TimedH11Protocol's, on uvicorn's connection.
"""
import json
import logging

from starlette.requests import ClientDisconnect, Request

from demo.settings import MAX_BODY_BYTES, MAX_BYTES

log = logging.getLogger("uvicorn.error")  # uvicorn's format and level


class LogClientDisconnect:
    """ASGI middleware: a client that hangs up while its request body is read is logged in one line
    (Starlette raises ClientDisconnect, which uvicorn logged as a full traceback)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            if scope.get("tinyzoo.timed_out"):  # the server gave up on the body, and logged it
                return
            host, port = scope.get("client") or ("?", "?")
            log.warning("client %s:%s disconnected during %s %s", host, port, scope.get("method"), scope.get("path"))


class AnswerHead:
    """ASGI middleware: HEAD to the API and the manual is answered as GET is, without the body
    (RFC 9110 asks a server to take HEAD wherever it takes GET; `curl -I` and uptime checks send
    it). FastAPI registers a GET route for GET alone; Gradio's own routes take HEAD already."""

    def __init__(self, app, prefixes: tuple[str, ...] = ("/api/", "/v2", "/readme", "/README.md", "/CHANGELOG.md",
                                                         "/docs/")):
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not scope["path"].startswith(self.prefixes):
            return await self.app(scope, receive, send)

        async def headers_only(message) -> None:
            await send({**message, "body": b""} if message["type"] == "http.response.body" else message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class RefuseEncodedBody:
    """ASGI middleware: a body sent with a Content-Encoding (gzip, br, ...) gets a 415 {"error"} that
    says so. No route decompresses one, and read as sent, a gzipped PNG would be refused as "not an
    image", which misleads; an image file is compressed already, and a JSON body is small."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        headers = dict(scope.get("headers", ()))
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        if scope["type"] != "http" or encoding in (b"identity", b"") or not has_body:
            return await self.app(scope, receive, send)
        shown = encoding.decode("latin-1")[:40]
        await refuse_unread(send, 415, f"Content-Encoding {shown!r} is not accepted: send the body's own bytes "
                                       "(an image file is compressed already)")


class LimitBody:
    """ASGI middleware: a request body over `limit` bytes gets a 413 {"error"} at once, whether its
    Content-Length says so or a chunked body grows past it; the route sees a disconnect. A body whose
    length is stated both ways (request smuggling's tool) gets a 400."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if b"content-length" in headers and b"transfer-encoding" in headers:  # a proxy may read the other one
            return await refuse_unread(send, 400, "Content-Length and Transfer-Encoding together: the body's "
                                                  "length must be stated one way, not two")
        declared = headers.get(b"content-length", b"0")
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
        await refuse_unread(send, 413, too_large(self.limit, "one image file", MAX_BYTES))


async def refuse_unread(send, status: int, message: str) -> None:
    """A JSON {"error"} answer to a request whose body is left unread: the connection closes after it."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": json.dumps({"error": message}).encode()})


def too_large(limit: int, one: str, most: int) -> str:
    """A 413's message: the cap, and what one request may carry (the cap may allow for a form's headers)."""
    return f"request body larger than {limit // 2**20} MiB: {one} of at most {most // 2**20} MiB per request"


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes `limit` bytes (nothing more is read)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def skip_body(request: Request, limit: int) -> None:
    """Read and drop up to `limit` bytes of the body before an early answer: sent over a body still
    arriving, the answer reaches the client as a connection reset, not as itself."""
    skipped = 0
    try:
        async for chunk in request.stream():
            skipped += len(chunk)
            if skipped > limit:
                return
    except ClientDisconnect:
        return
