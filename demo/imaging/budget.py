"""One memory budget shared by every image being decoded in a process.

A 300 KB PNG can declare 6300x6300 16-bit RGBA (under the 40 Mpx cap): decoding it plus the float
working copies of preprocessing peaks at ~470 MB, and 8 such uploads at once took the server to
5.8 GB. Each decode reserves its pixels' share before `load()` and keeps it until its
preprocessing ends; when the budget is spent, the next decode waits up to `wait_s`, then is
refused (the caller's exception: HTTP 503, a message in the app) instead of taking the memory.
"""
import ctypes
import threading
from contextlib import ExitStack, contextmanager

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


class DecodeBudget:
    def __init__(self, limit_bytes: int, bytes_per_pixel: int, wait_s: float, refusal: type[Exception]):
        self.limit_bytes = limit_bytes
        self.bytes_per_pixel = bytes_per_pixel
        self.wait_s = wait_s
        self.refusal = refusal
        self.used = 0
        self._changed = threading.Condition()
        self._scope = threading.local()

    @contextmanager
    def hold(self, nbytes: int):
        nbytes = min(nbytes, self.limit_bytes)  # an image alone may use the whole budget
        with self._changed:
            if not self._changed.wait_for(lambda: self.used + nbytes <= self.limit_bytes, self.wait_s):
                raise self.refusal("the server is busy decoding other large images: try again in a moment")
            self.used += nbytes
        try:
            yield
        finally:
            with self._changed:
                self.used -= nbytes
                self._changed.notify_all()

    @contextmanager
    def scope(self):
        """Budget reserved by decodes inside this block is held until the block ends: the whole
        preprocessing of an image, whose float copies outlive the decode itself."""
        outer = getattr(self._scope, "holds", None)
        with ExitStack() as holds:
            self._scope.holds = outer or holds  # nested scopes hold until the outermost ends
            try:
                yield
            finally:
                self._scope.holds = outer

    @contextmanager
    def decoding(self, width: int, height: int):
        """Around a decode of width x height pixels (its size as decoded, after any draft): reserve
        its share, held to the end of the enclosing scope(), or of this block without one."""
        hold = self.hold(width * height * self.bytes_per_pixel)
        holds = getattr(self._scope, "holds", None)
        if holds is None:
            with hold:
                yield
        else:
            holds.enter_context(hold)
            yield


def return_large_frees_to_the_os(threshold: int = 2**20) -> None:
    """Allocations over `threshold` get their own mmap, so freeing them hands the memory back.

    glibc raises its mmap threshold after each large free (up to 32 MiB): the next decode's
    buffers then come from the heap arena of whichever thread runs it and stay there after it
    ends, so the budget bounded the live bytes but not the RSS (measured: peak 1.12 GB for 16
    concurrent worst-case uploads through Gradio, 0.76 GB with a fixed 1 MiB threshold).
    A no-op where the C library is not glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):
        pass
