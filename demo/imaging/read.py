"""The one bounded reader: a file's bytes, never more than MAX_BYTES read whatever its size says,
from a regular file only (a FIFO, a device or a directory named like an image is refused at once)."""
import os
import stat

from demo.imaging.errors import ImageInputError
from demo.settings import MAX_BYTES

READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO opened non-blocking never waits
TOO_LARGE = f"larger than {MAX_BYTES // 2**20} MiB"


def read_regular_file(path, flags: int = READ_FLAGS) -> bytes:
    """The bytes of the regular file at `path`, checked on the open file (fstat after open: a path
    swapped between a check and the read is caught too). ImageInputError for what is not a regular
    file or is too large; OSError when it can't be opened."""
    fd = os.open(path, flags)
    with open(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageInputError("not a regular file")
        if info.st_size > MAX_BYTES:
            raise ImageInputError(f"file {TOO_LARGE}")
        # as many bytes as fstat says (asking for MAX_BYTES + 1 up front allocates that much for a
        # 300-byte PNG: 3x the time of the read itself), then the rest of a file that grew since
        data = f.read(info.st_size + 1)
        if len(data) > info.st_size:
            data += f.read(MAX_BYTES + 1 - len(data))
    if len(data) > MAX_BYTES:
        raise ImageInputError(f"file {TOO_LARGE}")
    return data
