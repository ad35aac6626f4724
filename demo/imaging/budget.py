"""One memory budget shared by every image being decoded in a process.

A 300 KB PNG can declare 6300x6300 16-bit RGBA (under the 40 Mpx cap): decoding it plus the float
working copies of preprocessing peaks at ~470 MB, and 8 such uploads at once took the server to
5.8 GB. Each decode reserves its pixels' share before `load()` and keeps it until its
preprocessing ends; when the budget is spent, the next decode waits up to `wait_s`, then is
refused (the caller's exception: HTTP 503, a message in the app) instead of taking the memory.
"""
import ctypes
import threading
from contextlib import ContextDecorator, ExitStack, contextmanager, nullcontext

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters
M_MMAP_THRESHOLD = -3
# a decode whose share is under this fraction of the budget is not counted: a 28x28 PNG's share
# (9 KB of 512 MiB) is nothing to wait for, and the lock and bookkeeping cost a sixth of its decode
NEGLIGIBLE_SHARE = 1 / 10_000


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

    def scope(self) -> "HeldUntilScopeEnds":
        """Budget reserved by decodes inside this block is held until the block ends: the whole
        preprocessing of an image, whose float copies outlive the decode itself."""
        return HeldUntilScopeEnds(self._scope)

    def decoding(self, width: int, height: int):
        """Around a decode of width x height pixels (its size as decoded, after any draft): reserve
        its share, held to the end of the enclosing scope(), or of this block without one."""
        nbytes = width * height * self.bytes_per_pixel
        if nbytes < self.limit_bytes * NEGLIGIBLE_SHARE:
            return nullcontext()
        if not getattr(self._scope, "depth", 0):
            return self.hold(nbytes)
        if self._scope.holds is None:
            self._scope.holds = ExitStack()
        self._scope.holds.enter_context(self.hold(nbytes))  # reserved now, as a `with` would
        return nullcontext()


class HeldUntilScopeEnds(ContextDecorator):
    """DecodeBudget.scope(): one instance may decorate a function that many threads run, so the
    state is the thread's own; nested scopes hold until the outermost ends. A class, not a
    @contextmanager: it runs once per picture, and a generator's set-up is a tenth of a 28x28
    PNG's decode."""

    def __init__(self, local: threading.local):
        self.local = local

    def __enter__(self) -> None:
        depth = getattr(self.local, "depth", 0)
        if not depth:
            self.local.holds = None  # an ExitStack once a decode inside reserves its share
        self.local.depth = depth + 1

    def __exit__(self, *exc_info) -> None:
        self.local.depth -= 1
        if not self.local.depth and self.local.holds is not None:
            holds, self.local.holds = self.local.holds, None
            holds.close()


def tune_malloc(own_mmap_above: int = 4 * 2**20, kept_on_top: int = 16 * 2**20) -> None:
    """Allocations over `own_mmap_above` get their own mmap, so freeing them hands the memory back;
    each heap arena keeps up to `kept_on_top` free at its top. A no-op where the C library is not glibc.

    glibc raises its mmap threshold after each large free (up to 32 MiB): the next decode's
    buffers then come from the heap arena of whichever thread runs it and stay there after it
    ends, so the budget bounded the live bytes but not the RSS (measured: peak 1.12 GB for 16
    concurrent worst-case uploads through Gradio, 0.76 GB with a fixed threshold). A fixed mmap
    threshold also fixes the trim threshold at 128 KiB, and glibc's own dynamic one trims too: the
    heap's top was handed back after every picture and faulted in again, page by page, by the next
    one. A phone photo's body, decode and analysis copies (up to 4 MiB each) then cost ~1,100 page
    faults, 4-8 ms of a 40 ms classify on this VM; with these settings ~20."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, own_mmap_above)
        libc.mallopt(M_TRIM_THRESHOLD, kept_on_top)
    except (OSError, AttributeError):
        pass
