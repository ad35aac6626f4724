"""Gradio's upload cache bounded by size, not only by age.

Gradio keeps every upload (any file type, up to max_file_size each) until its hourly clean-up:
10 x 45 MiB of non-images were accepted at 127 MiB/s and kept for an hour. After each upload the
files written since the server started are trimmed, oldest first, to `limit_bytes`. Files from
before the start (the examples Gradio cached while the UI was built) are never touched.
"""
import os
import threading
import time
from pathlib import Path

import anyio

from demo.web.uploads import upload_folder

_trim_lock = threading.Lock()  # one trim at a time: concurrent uploads would double-count deletions


def files_since(folder: Path, since: float) -> list[tuple[float, int, str]]:
    """(mtime, size, path) of the regular files under `folder` modified at or after `since`."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except OSError:  # deleted meanwhile (Gradio's own clean-up)
                continue
            if info.st_mtime >= since and os.path.isfile(path) and not os.path.islink(path):
                found.append((info.st_mtime, info.st_size, path))
    return found


def trim(folder: Path, limit_bytes: int, since: float) -> int:
    """Delete the oldest files written since `since` until they total at most `limit_bytes`; -> bytes freed."""
    with _trim_lock:
        files = sorted(files_since(folder, since))
        excess = sum(size for _, size, _ in files) - limit_bytes
        freed = 0
        for _, size, path in files:
            if freed >= excess:
                break
            try:
                os.unlink(path)
                os.rmdir(os.path.dirname(path))  # Gradio stores each file in its own hash folder
            except OSError:
                pass  # folder not empty, or the file is already gone
            freed += size
        return freed


class BoundUploadCache:
    """ASGI middleware: every POST to Gradio's upload route trims the cache to `limit_bytes` before
    its response completes (so a client never sees the cache over the bound after its upload)."""

    def __init__(self, app, limit_bytes: int):
        self.app = app
        self.limit_bytes = limit_bytes
        self.started = time.time()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)

        async def send_after_trim(message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                await anyio.to_thread.run_sync(trim, upload_folder(), self.limit_bytes, self.started)
            await send(message)

        await self.app(scope, receive, send_after_trim)
