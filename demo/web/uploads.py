"""File payloads from Gradio callers: only regular files Gradio itself wrote into its upload
folder are ever opened, whatever path a caller names.

`gr.mount_gradio_app` never "launches" the Blocks, and Gradio checks a FileData's path against its
upload folder only for launched apps (and gr.Image's ImageData skips the check entirely when
`meta` is missing): a caller sending {"path": "/etc/shadow"} made the server open that file, and
/dev/zero or a FIFO froze it. Here every input of every event (any component, any nesting:
Sketchpad layers, examples, future FileData) is checked before Gradio touches it, and reads
of an upload go through `read_upload`, which refuses anything but a bounded regular file.
"""
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from demo.imaging.errors import ImageInputError
from demo.imaging.read import READ_FLAGS, read_regular_file
from demo.settings import MAX_BYTES

# one message whatever the path: existing, missing, a directory or a device all read the same,
# so a caller learns nothing about the server's files
REFUSED = "this upload is not a file the server received: upload the image again"
OPEN_FLAGS = READ_FLAGS | os.O_NOFOLLOW  # and a symlink swapped in after the check is not followed

log = logging.getLogger("uvicorn.error")  # uvicorn's format and level


class UploadRefused(gr.Error):
    def __init__(self):
        super().__init__(REFUSED, print_exception=False)  # a caller's error: one log line, no traceback


def upload_folder() -> Path:
    return Path(os.path.realpath(get_upload_folder()))


def checked_upload(path) -> Path:
    """A caller's path -> the real path of a regular file inside Gradio's upload folder, no larger
    than an upload may be; anything else (outside, symlinked out, `..`, missing, a directory,
    a device, a FIFO) raises UploadRefused."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise UploadRefused()
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(upload_folder()):
        raise UploadRefused()
    try:
        info = os.stat(real)
    except OSError:
        raise UploadRefused() from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
        raise UploadRefused()
    return real


def read_upload(path) -> bytes:
    """The bytes of an upload, read from the checked file itself through the one bounded reader
    (a file swapped for a FIFO or a symlink between the check and the read is refused too)."""
    real = checked_upload(path)
    try:
        return read_regular_file(real, OPEN_FLAGS)
    except (ImageInputError, OSError):
        raise UploadRefused() from None


def named_paths(value) -> Iterator:
    """Every `path` in a raw event input, at any depth, with or without Gradio's `meta` marker."""
    if isinstance(value, dict):
        if "path" in value:
            yield value["path"]
        for item in value.values():
            yield from named_paths(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from named_paths(item)


def checked_file_paths(block_fn, inputs) -> None:
    """Every path in an event's inputs, checked before Gradio moves or opens it (for
    patches.check_event_inputs, which also turns on Gradio's own upload-folder check)."""
    for path in named_paths(inputs):
        if path is not None:
            try:
                checked_upload(path)
            except UploadRefused:
                log.warning("refused a %s input naming %.200r: not a file in the upload folder",
                            block_fn.api_name or "Gradio", path)
                raise
