"""`tinyzoo classify` inputs: command-line arguments -> Items (files, archive members, or an
error found while listing), and the capped read of one Item's bytes.

Listing never reads image data: archive members are described by their headers and read later,
one at a time, by whichever process prepares them. Every input the user names (an argument, a
glob match, a line on stdin) gets an Item, so every named input gets a row; directory walks take
image and archive files and skip the rest. File names are str as the OS gives them
(os.fsdecode: bytes that are not UTF-8 are kept as surrogate escapes).
"""
import errno
import fnmatch
import glob
import os
import stat
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass

from demo.imaging.errors import ImageInputError
from demo.imaging.read import TOO_LARGE, read_regular_file
from demo.settings import MAX_BYTES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MEMBER_SEP = "::"  # archive.zip::inner/path.png
BROKEN_LINK = "broken symbolic link (its target does not exist)"


class UsageError(Exception):
    """The command line or its output can't work: one line on stderr, exit status 2."""


@dataclass(frozen=True)
class Item:
    name: str  # what the output's path column says
    path: str = ""  # the file to read, or the archive holding the member
    kind: str = "file"  # file | zip | tar
    member: int = 0  # which member: zip, its position in the member list; tar, the offset of its data
    size: int = 0  # an archive member's size as its header gives it
    error: str = ""  # found while listing: the row says it and nothing is read


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


# --- listing ---------------------------------------------------------------------------------

def list_items(args: list[str], recursive: bool) -> list[Item]:
    """Command-line arguments (files, dirs, globs, archives, '-') -> Items in a stable order,
    each input once."""
    named = []  # (path, True when the user spelled it out and a missing file is a usage error)
    for arg in args:
        if arg == "-":
            named += [(path, False) for path in stdin_paths(sys.stdin)]
        elif glob.has_magic(arg):
            matches = expand_glob(arg, recursive)
            if not matches:
                raise UsageError(f"{arg}: no file matches this pattern")
            named += [(path, False) for path in matches]
        else:
            named.append((arg, True))
    items, seen, walked = [], set(), set()
    for path, literal in named:
        for item in named_items(path, recursive, literal, walked):
            if item.name not in seen:
                seen.add(item.name)
                items.append(item)
    if not items:  # a run that would write nothing and exit 0 says why instead
        raise UsageError(nothing_to_classify([path for path, _ in named], recursive))
    return items


def nothing_to_classify(paths: list[str], recursive: bool) -> str:
    """Why the named inputs gave no image: what a named folder holds instead."""
    if not paths:
        return "nothing to classify: no path came on standard input"
    for folder in filter(os.path.isdir, paths):
        try:
            with os.scandir(folder) as entries:
                inside = [entry.is_dir() for entry in entries]
        except OSError:
            continue
        subfolders, others = sum(inside), len(inside) - sum(inside)
        held = f"{others} other file{'s' * (others != 1)} and {subfolders} folder{'s' * (subfolders != 1)}"
        hint = ": --recursive looks inside folders" if subfolders and not recursive else ""
        return f"{folder}: no image or archive file in this folder (it holds {held}{hint})"
    return f"nothing to classify in {', '.join(paths[:3])}"


def stdin_paths(stream) -> list[str]:
    """One path per line (LF or CRLF); bytes as they come (a non-UTF-8 name stays the same file)."""
    if hasattr(stream, "buffer"):
        lines = [os.fsdecode(line.rstrip(b"\r\n")) for line in stream.buffer]
    else:  # a text stream without bytes underneath (tests, wrappers)
        lines = [line.rstrip("\r\n") for line in stream]
    return [line for line in lines if line.strip()]


def named_items(path: str, recursive: bool, literal: bool, walked: set) -> list[Item]:
    """One named path -> its Items: a file, an archive's members, a folder's images, or an error
    row. walked: (st_dev, st_ino) of the folders listed so far in this run, each listed once."""
    if "\0" in path:  # only a line on stdin can hold one
        return [Item(path, error="the name holds a NUL byte: no file can be named so")]
    try:
        st = os.stat(path)
    except OSError as e:
        if not os.path.lexists(path) and literal:
            raise UsageError(f"{path}: no such file or directory") from None
        return [Item(path, error=stat_error(path, e))]
    if stat.S_ISDIR(st.st_mode):
        if is_image_name(path):
            return [Item(path, error="is a directory, not an image file")]
        return walk(path, recursive, walked)
    if is_archive_name(path) and stat.S_ISREG(st.st_mode):
        return archive_items(path)
    return [Item(path, path=path)]


def stat_error(path: str, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if e.errno == errno.ENOENT and os.path.islink(path):
        return BROKEN_LINK
    return f"cannot read: {e.strerror or e}"


def walk(folder: str, recursive: bool, visited: set) -> list[Item]:
    """Image and archive files under a folder, sorted by name, and error rows for image names
    that can't be files. Directories already visited (a symlink loop, a link to an ancestor)
    are not entered again."""
    try:
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in visited:
            return []
        visited.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as entries:
            entries = sorted(entries, key=lambda e: e.name)
    except OSError as e:
        return [Item(folder, error=f"cannot list folder: {e.strerror or e}")]
    found = []
    for entry in entries:
        found += walk_entry(entry, recursive, visited)
    return found


def walk_entry(entry: os.DirEntry, recursive: bool, visited: set) -> list[Item]:
    wanted = is_image_name(entry.name) or is_archive_name(entry.name)
    try:
        if entry.is_dir():
            return walk(entry.path, recursive, visited) if recursive else []
        if not entry.is_file():  # a dangling symlink, a FIFO, a socket
            broken = entry.is_symlink() and not os.path.exists(entry.path)
            return [Item(entry.path, error=BROKEN_LINK if broken else "not a regular file")] if wanted else []
    except OSError as e:  # ELOOP and the like
        return [Item(entry.path, error=stat_error(entry.path, e))] if wanted else []
    if not wanted:
        return []
    return archive_items(entry.path) if is_archive_name(entry.name) else [Item(entry.path, path=entry.path)]


def expand_glob(pattern: str, recursive: bool) -> list[str]:
    """glob.glob, except that `**` is expanded by our own walk: glob follows directory symlinks
    and never ends on a loop."""
    if not (recursive and "**" in pattern):
        return sorted(glob.glob(pattern))
    parts = pattern.split(os.sep)
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = os.sep.join(parts[:fixed]) or ("/" if pattern.startswith(os.sep) else ".")
    rest = parts[fixed:]
    found = [os.path.join(root, *rel) if fixed else os.sep.join(rel)
             for rel in tree(root, set()) if parts_match(rest, rel)]
    return sorted(found)


def tree(folder: str, visited: set, prefix: tuple = ()):
    """Relative path parts of every entry below folder, loop-safe."""
    try:
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in visited:
            return
        visited.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as entries:
            entries = sorted(entries, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        yield prefix + (entry.name,)
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            yield from tree(entry.path, visited, prefix + (entry.name,))


def parts_match(pattern: list[str], parts: tuple) -> bool:
    """glob semantics per path component: `**` is zero or more directories (not hidden ones); a
    leading dot must be matched explicitly."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return parts_match(pattern[1:], parts) or (
            bool(parts) and not parts[0].startswith(".") and parts_match(pattern, parts[1:]))
    if not parts or (parts[0].startswith(".") and not pattern[0].startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], pattern[0]) and parts_match(pattern[1:], parts[1:])


def archive_items(path: str) -> list[Item]:
    """Image members of a zip or tar archive, in archive order, described by their headers;
    an archive that breaks part-way keeps the members before the break, then an error row; one
    with no image member is an error row itself (it was named, or found, as an input)."""
    items = []
    try:
        for item in (zip_items(path) if path.lower().endswith(".zip") else tar_items(path)):
            items.append(item)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, ValueError) as e:
        items.append(Item(path, error=f"unreadable archive: {archive_words(e)}"))
    return items or [Item(path, error=f"no image in this archive (no member ends in {', '.join(IMAGE_SUFFIXES)})")]


def archive_words(e: Exception) -> str:
    """zipfile's and tarfile's reasons in a reader's words (tarfile's opening error lists each
    decompressor it tried, in its own exception names)."""
    if isinstance(e, zipfile.BadZipFile) and "not a zip" in str(e):
        return "not a zip file, whatever its name says"
    if isinstance(e, tarfile.ReadError) and "could not be opened" in str(e):
        return "not a tar archive (or a damaged one), whatever its name says"
    if isinstance(e, EOFError) or "unexpected end of data" in str(e):
        return "it ends part-way through a member (cut off while copying or downloading?)"
    return str(e)


def member_name(path: str, member: str, seen: dict) -> str:
    """archive::member, made unique: a second 'a.png' in one archive is 'a.png#2' (each member is
    read, and each row has a path of its own). seen: the names so far in this archive, counted."""
    seen[member] = seen.get(member, 0) + 1
    return f"{path}{MEMBER_SEP}{member}" + (f"#{seen[member]}" if seen[member] > 1 else "")


def zip_items(path: str):
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    seen = {}
    for index, info in enumerate(members):
        if info.is_dir() or not is_image_name(info.filename):
            continue
        name = member_name(path, info.filename, seen)
        if info.flag_bits & 0x1:
            yield Item(name, error="archive member is encrypted (password-protected): not supported")
        elif info.file_size > MAX_BYTES:
            yield Item(name, error=f"archive member {TOO_LARGE} (per its header): not read")
        else:
            yield Item(name, path, "zip", index, info.file_size)


TAR_KINDS = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a device",
             tarfile.BLKTYPE: "a device", tarfile.FIFOTYPE: "a FIFO"}


def tar_items(path: str):
    seen = {}
    with tarfile.open(path) as archive:
        for member in archive:  # headers only: the data of a compressed tar is skipped, not kept
            if member.isdir() or not is_image_name(member.name):
                continue
            name = member_name(path, member.name, seen)
            if not member.isfile():
                yield Item(name, error=f"archive member is {TAR_KINDS.get(member.type, 'a special entry')}, not a file")
            elif member.size > MAX_BYTES:
                yield Item(name, error=f"archive member {TOO_LARGE} (per its header): not read")
            else:
                yield Item(name, path, "tar", member.offset_data, member.size)
        if broken_off(archive):
            yield Item(path, error="unreadable archive: a damaged header where the next member should be "
                                   "(cut off, or not all of it is a tar)")


def broken_off(archive: tarfile.TarFile) -> bool:
    """tarfile ends its member list quietly at a header it can't read (cut short, a bad checksum)
    after the first: a whole archive has only zero blocks there, its end marker."""
    archive.fileobj.seek(archive.offset)
    return bool(archive.fileobj.read(tarfile.BLOCKSIZE).strip(b"\0"))


# --- reading one item (in whichever process prepares it) -------------------------------------

_OPEN_ARCHIVE: dict = {}  # (path, inode, mtime, size) -> open ZipFile/TarFile: members of one archive come in runs


def read_item(item: Item) -> bytes:
    """-> the item's bytes, never more than MAX_BYTES read, whatever a header says.
    Raises ImageInputError (the row's message) or OSError."""
    if item.kind == "file":
        return read_regular_file(item.path)
    try:
        data = read_member(item)
    except (zipfile.BadZipFile, zlib.error, EOFError, tarfile.TarError) as e:
        raise ImageInputError(f"corrupt archive member: {e}") from None
    except NotImplementedError as e:  # zipfile: "That compression method is not supported"
        raise ImageInputError(f"archive member uses an unsupported compression method: {e}") from None
    except RuntimeError as e:  # zipfile: encrypted member
        raise ImageInputError(f"archive member can't be read: {e}") from None
    if len(data) > MAX_BYTES:
        raise ImageInputError(f"archive member {TOO_LARGE}")
    return data


def read_member(item: Item) -> bytes:
    archive = open_archive(item)
    if item.kind == "zip":
        with archive.open(archive.infolist()[item.member]) as member:
            return member.read(MAX_BYTES + 1)
    archive.fileobj.seek(item.member)
    return archive.fileobj.read(min(item.size, MAX_BYTES + 1))


def open_archive(item: Item):
    """The item's archive, kept open for the members after it; reopened when the file changed."""
    st = os.stat(item.path)
    key = (item.path, st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _OPEN_ARCHIVE:
        close_archives()
        _OPEN_ARCHIVE[key] = zipfile.ZipFile(item.path) if item.kind == "zip" else tarfile.open(item.path)
    return _OPEN_ARCHIVE[key]


def close_archives() -> None:
    for archive in _OPEN_ARCHIVE.values():
        archive.close()
    _OPEN_ARCHIVE.clear()
