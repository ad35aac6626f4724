"""`tinyzoo classify` output: the locked results file, what an earlier run left in it (--resume),
and the row writer.

File names go out byte for byte: in CSV a name that is not UTF-8 keeps its raw bytes (read the
file with errors="surrogateescape", as `ls`/`find` output would be read); in JSONL such bytes are
JSON escapes \\udc80-\\udcff, so every line stays valid UTF-8. Both read back (json.loads / csv
with surrogateescape, then os.fsencode) to the exact bytes of the name, which is how --resume
matches them. CSV is RFC 4180: CRLF line ends, and any field holding a quote, comma, CR or LF
is quoted, so a name with a line break stays one field.
"""
import csv
import errno
import fcntl
import io
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from demo.batch.inputs import UsageError

CSV_RECORD_END = re.compile(rb'"|\n')


class OutputError(UsageError):
    """The results can't be written (disk full, closed pipe, ...): one line, exit status 2."""


def output_format(out: str, requested: str | None) -> str:
    if requested:
        return requested
    if out in ("-", os.devnull):  # a timing run's rows go nowhere: no suffix to ask for
        return "csv"
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise UsageError(f"--out {out}: use a .csv or .jsonl file, '-' for stdout, or give --format")
    return suffix[1:]


@dataclass(frozen=True)
class Row:
    """One input's line in the results: its answer (the top k, best first) or its error."""
    name: str
    label: str = ""  # empty below --min-confidence, and on an error row
    confidence: float | str = ""
    top: tuple = ()  # (label, confidence) pairs, best first
    error: str = ""

    def values(self, top_k: int) -> list:
        """The row in row_fields(top_k) order."""
        pairs = [value for pair in self.top for value in pair] or ["", ""] * top_k
        return [self.name, self.label, self.confidence, *pairs, self.error]


def row_fields(top_k: int) -> list[str]:
    fields = ["path", "label", "confidence"]
    for i in range(1, top_k + 1):
        fields += [f"top{i}_label", f"top{i}_confidence"]
    return fields + ["error"]


def open_output(out: str) -> int:
    """-> a file descriptor on --out, locked so that a second run on the same file refuses."""
    try:
        fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise OutputError(f"--out {out}: cannot open for writing: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(f"--out {out}: another tinyzoo classify is writing this file; "
                         "wait for it to end or choose another --out") from None
    except OSError as e:  # a filesystem without locks: carry on unlocked rather than refuse
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    return fd


@dataclass
class Previous:
    """The inputs an earlier run already wrote rows for."""
    names: set = field(default_factory=set)
    failed: set = field(default_factory=set)  # those whose row is an error row

    def any_failed(self, items) -> bool:
        """Whether one of these inputs already has an error row."""
        return any(item.name in self.failed for item in items)


def take_previous(fd: int, out: str, fmt: str, fields: list[str], labels=None) -> Previous:
    """Read what an earlier run wrote and cut the file after its last complete record (a
    killed run may have left half a row). A file this command did not write is refused, untouched,
    and so is one holding a label outside `labels` (the model's): another model wrote it."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return Previous()
    raw = read_all(fd)
    other = "jsonl" if fmt == "csv" else "csv"
    if raw and looks_like_start(raw[:200], other, fields):
        raise UsageError(f"--resume: {out} holds {other.upper()} rows; resume with --format {other}, "
                         f"or write {fmt.upper()} to another --out")
    cut = csv_complete_end(raw) if fmt == "csv" else raw.rfind(b"\n") + 1
    parse = csv_records if fmt == "csv" else jsonl_records
    records = parse(raw[:cut], out, fields)
    if cut == 0 and raw and not looks_like_start(raw, fmt, fields):
        raise UsageError(f"--resume: {out} is not a tinyzoo classify {fmt.upper()} file; choose another --out")
    if cut < len(raw):
        os.ftruncate(fd, cut)
    previous = Previous()
    for record in records:
        if labels is not None and record[3] and record[3] not in labels:  # the top-1 label
            raise UsageError(f"--resume: {out} holds answers of another model ({record[3]!r} is none of this "
                             "model's labels); resume with the --model that wrote it, or choose another --out")
        previous.names.add(record[0])
        if record[-1]:
            previous.failed.add(record[0])
    return previous


def read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def csv_complete_end(raw: bytes) -> int:
    """Offset just past the last complete CSV record: a LF outside quotes. Inside a quoted
    field every literal quote is doubled, so an even count of quotes so far means outside."""
    end, quotes = 0, 0
    for match in CSV_RECORD_END.finditer(raw):
        if match.group() == b'"':
            quotes += 1
        elif quotes % 2 == 0:
            end = match.end()
    return end


def looks_like_start(raw: bytes, fmt: str, fields: list[str]) -> bool:
    """A first record cut short: a prefix of our CSV header, or the start of a JSONL object."""
    start = (",".join(fields) + "\r\n").encode() if fmt == "csv" else b'{"path": '
    return start.startswith(raw) or raw.startswith(start)


def csv_records(raw: bytes, out: str, fields: list[str]) -> list[list[str]]:
    # a path can be longer than csv's default field limit (a tar member's name, 128 KiB and more),
    # and no field is longer than the file
    csv.field_size_limit(max(csv.field_size_limit(), len(raw)))
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8", "surrogateescape"), newline="")))
    except csv.Error as e:
        raise UsageError(f"--resume: {out} can't be read as CSV ({e}): not a file this command wrote") from None
    if not rows:
        return []
    check_columns(rows[0], out, fields, "its header")
    for number, row in enumerate(rows[1:], 2):
        if len(row) != len(fields):
            raise UsageError(f"--resume: {out} record {number} has {len(row)} columns, not {len(fields)}: "
                             "not a file this command wrote")
    return rows[1:]


def jsonl_records(raw: bytes, out: str, fields: list[str]) -> list[list]:
    records = []
    for number, line in enumerate(raw.splitlines(), 1):
        try:
            record = json.loads(line.decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise UsageError(f"--resume: {out} line {number} is not JSON: not a file this command wrote") from None
        check_columns(list(record) if isinstance(record, dict) else [], out, fields, f"line {number}")
        records.append(list(record.values()))
    return records


def check_columns(columns: list, out: str, fields: list[str], where: str) -> None:
    if columns == fields:
        return
    if columns[:3] == fields[:3] and columns[-1:] == ["error"] and len(columns) % 2 == 0:
        k = (len(columns) - 4) // 2
        raise UsageError(f"--resume: {out} has top-{k} columns; resume with --top-k {k}, or choose another --out")
    raise UsageError(f"--resume: {out} is not a tinyzoo classify output ({where} has other columns); "
                     "choose another --out")


class RowWriter:
    """Rows out to a file descriptor, each batch encoded and written whole, nothing buffered:
    a killed run keeps every row written so far, and a write error surfaces at once."""

    def __init__(self, fd: int, out: str, fmt: str, fields: list[str], header: bool):
        self.fd, self.out, self.fmt, self.fields = fd, out, fmt, fields
        if header and fmt == "csv":
            self.send(self.csv_text([fields]))

    def write(self, rows: list[Row]) -> None:
        values = [row.values(self.top_k) for row in rows]
        self.send(self.csv_text(values) if self.fmt == "csv" else self.jsonl_text(values))

    @property
    def top_k(self) -> int:
        return (len(self.fields) - 4) // 2  # path, label, confidence, (label, confidence) * k, error

    def csv_text(self, rows: list[list]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue()

    def jsonl_text(self, rows: list[list]) -> str:
        return "".join(self.jsonl_line(row) for row in rows)

    def jsonl_line(self, row: list) -> str:
        """One JSON object; an answer an error row (or --min-confidence) left out is null, not "", so
        that each column holds one type: numbers or null, strings or null."""
        record = {name: None if value == "" and name not in ("path", "error") else value
                  for name, value in zip(self.fields, row)}
        line = json.dumps(record, ensure_ascii=False)
        if not is_utf8(line):  # a name that is not UTF-8: \udcXX escapes keep the line valid UTF-8
            line = json.dumps(record)
        return line + "\n"

    def send(self, text: str) -> None:
        data = memoryview(text.encode("utf-8", "surrogateescape"))
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except BrokenPipeError:
            raise OutputError(f"{self.where()} was closed (broken pipe): stopped") from None
        except OSError as e:
            raise OutputError(f"cannot write to {self.where()}: {e.strerror}") from None

    def close(self) -> None:
        if self.fd != 1:  # stdout stays open
            os.close(self.fd)

    def where(self) -> str:
        return "stdout" if self.out == "-" else self.out


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
