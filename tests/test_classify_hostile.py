"""`tinyzoo classify` against hostile inputs and a hostile environment (issue 13, sections 2-4):
signals, odd file names, resume cut at any byte, two runs on one file, archive bombs and broken
members, symlink loops, output errors, and decoders that raise or crash. Every input named once
gets exactly one row; no traceback, no hang."""
import csv
import faulthandler
import fcntl
import io
import json
import multiprocessing
import os
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import demo.batch.inputs
import demo.batch.pool
import demo.batch.classify
import demo.batch.job
import demo.batch.local
import demo.batch.output
import demo.cli
from demo.batch.output import row_fields, take_previous
from demo.batch.classify import main as classify
from tests.conftest import ROOT, drawn_digit_png

DIGIT = drawn_digit_png()
NASTY_NAMES = [b"plain.png", b"cr\rin-name.png", b"lf\nin-name.png", b'quote"and,comma.png', b"crlf\r\n.png",
               b"\xff\xfe-not-utf8.png", b"caf\xe9-latin1.png", b" leading space.png"]


def cli(*args, timeout=120, **kw):
    """The CLI as a user runs it, in its own process (bounded: a hang fails the test)."""
    return subprocess.run([sys.executable, "-m", "demo.cli", "classify", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=timeout, **kw)


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_bytes().decode("utf-8").splitlines()]  # strict UTF-8


def read_rows(path) -> list[dict]:
    return read_jsonl(path) if str(path).endswith(".jsonl") else read_csv(path)


def paths(rows) -> list[bytes]:
    return [os.fsencode(r["path"]) for r in rows]


@pytest.fixture()
def nasty(tmp_path) -> Path:
    folder = tmp_path / "nasty"
    folder.mkdir()
    for name in NASTY_NAMES:
        with open(os.fsencode(folder) + b"/" + name, "wb") as f:
            f.write(DIGIT)
    return folder


# --- file names -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_any_file_name_round_trips_and_resume_matches_it(nasty, tmp_path, suffix):
    out = tmp_path / f"r{suffix}"
    assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--workers", "2"]) == 0
    rows = read_rows(out)
    assert sorted(paths(rows)) == sorted(os.fsencode(nasty) + b"/" + n for n in NASTY_NAMES)
    assert all(r["label"] == "7" for r in rows)
    before = out.read_bytes()
    assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--resume"]) == 0
    assert out.read_bytes() == before  # every name matched: nothing added


def test_non_utf8_names_from_stdin(nasty, tmp_path):
    listing = b"".join(os.fsencode(nasty) + b"/" + n + b"\n" for n in NASTY_NAMES if b"\n" not in n and b"\r" not in n)
    result = cli("-", "--model", "mnist-cnn", "--out", tmp_path / "s.jsonl", input=listing)
    assert result.returncode == 0, result.stderr
    assert sorted(paths(read_jsonl(tmp_path / "s.jsonl"))) == sorted(listing.splitlines())


def test_a_stdin_line_with_a_nul_byte_is_an_error_row(nasty, tmp_path):
    listing = os.fsencode(nasty / "plain.png") + b"\n" + os.fsencode(tmp_path / "a\0b.png") + b"\n"
    result = cli("-", "--model", "mnist-cnn", "--out", tmp_path / "s.csv", input=listing)
    rows = read_csv(tmp_path / "s.csv")
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    assert [r["label"] for r in rows] == ["7", ""] and "NUL byte" in rows[1]["error"]


def test_a_broken_exif_block_is_read_past_without_a_warning(tmp_path):
    """Pillow warned "Corrupt EXIF data", two lines of stderr per file; the block is optional metadata."""
    picture = np.full((64, 64), 255, np.uint8)
    picture[10:54, 28:36] = 0
    ifd = b"II*\x00" + struct.pack("<IHHHII", 8, 1, 0x0112, 3, 1, 6)  # the next-IFD pointer is missing
    Image.fromarray(picture).save(tmp_path / "exif.jpg", "JPEG", exif=b"Exif\x00\x00" + ifd)
    result = cli(tmp_path / "exif.jpg", "--model", "mnist-cnn", "--out", tmp_path / "e.csv")
    assert result.returncode == 0 and read_csv(tmp_path / "e.csv")[0]["label"]
    assert b"EXIF" not in result.stderr and result.stderr.count(b"\n") == 1, result.stderr


def complete_output(nasty, tmp_path, fmt) -> tuple[Path, bytes]:
    out = tmp_path / f"full.{fmt}"
    assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--workers", "1", "--top-k", "1"]) == 0
    return out, out.read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_take_previous_at_every_cut_keeps_only_complete_records(nasty, tmp_path, fmt):
    """A kill can cut the file at any byte: what is kept is exactly the records completed before the cut."""
    _, full = complete_output(nasty, tmp_path, fmt)
    fields = row_fields(1)
    records = paths(read_rows(tmp_path / f"full.{fmt}"))
    ends = record_ends(full, fmt)
    header = ends.pop(0) if fmt == "csv" else 0
    cut_file = tmp_path / f"cut.{fmt}"
    for cut in range(len(full) + 1):
        cut_file.write_bytes(full[:cut])
        fd = os.open(cut_file, os.O_RDWR)
        try:
            previous = take_previous(fd, str(cut_file), fmt, fields)
        finally:
            os.close(fd)
        complete = sum(end <= cut for end in ends)
        assert {os.fsencode(n) for n in previous.names} == set(records[:complete]), cut
        assert cut_file.stat().st_size == max([0] + [e for e in [header, *ends] if e <= cut]), cut


def record_ends(full: bytes, fmt: str) -> list[int]:
    """Offsets just past the header (CSV) and each record, from the records themselves: each
    parsed row written out again alone must give back the file byte for byte."""
    if fmt == "jsonl":
        pieces = full.splitlines(keepends=True)
    else:
        rows = list(csv.reader(io.StringIO(full.decode("utf-8", "surrogateescape"), newline="")))
        pieces = []
        for row in rows:
            text = io.StringIO()
            csv.writer(text, lineterminator="\r\n").writerow(row)
            pieces.append(text.getvalue().encode("utf-8", "surrogateescape"))
    assert b"".join(pieces) == full
    ends, offset = [], 0
    for piece in pieces:
        offset += len(piece)
        ends.append(offset)
    return ends


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_resume_after_a_cut_at_every_byte_of_a_row_with_a_newline_name(nasty, tmp_path, fmt):
    """The real CLI, resumed from every cut inside the records whose names hold CR / LF:
    each input exactly once, and the same bytes as an uninterrupted run."""
    _, full = complete_output(nasty, tmp_path, fmt)
    rows = read_rows(tmp_path / f"full.{fmt}")
    ends = record_ends(full, fmt)
    starts = ([] if fmt == "csv" else [0]) + ends[:-1]
    ends = ends[1:] if fmt == "csv" else ends
    breaks = "\r\n" if fmt == "csv" else "\n"  # JSON escapes both: the LF rows suffice there
    newline_rows = [i for i, r in enumerate(rows) if any(c in r["path"] for c in breaks)]
    assert len(newline_rows) == len(breaks) + 1
    out = tmp_path / f"cut.{fmt}"
    for i in newline_rows:
        for cut in range(starts[i], ends[i] + 1):
            out.write_bytes(full[:cut])
            assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--resume", "--workers", "1",
                             "--top-k", "1"]) == 0
            assert sorted(paths(read_rows(out))) == sorted(paths(rows)), cut
            assert out.read_bytes() == full, cut  # rows come in the same order


# --- two runs, top-k, exit status ---------------------------------------------------------------

def test_a_second_run_on_a_locked_output_refuses(nasty, tmp_path, capsys):
    out = tmp_path / "locked.csv"
    out.write_bytes(b"")
    with open(out, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running tinyzoo classify holds it
        for extra in (["--resume"], []):
            assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), *extra]) == 2
            assert "another tinyzoo classify is writing" in capsys.readouterr().err
    assert out.read_bytes() == b""
    assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--resume"]) == 0  # lock released


def test_resume_with_another_top_k_refuses(nasty, tmp_path, capsys):
    out = tmp_path / "k.jsonl"
    assert classify([str(nasty / "plain.png"), "--model", "mnist-cnn", "--out", str(out), "--top-k", "2"]) == 0
    before = out.read_bytes()
    assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--resume", "--top-k", "3"]) == 2
    assert "resume with --top-k 2" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_resumed_run_exits_1_when_the_file_holds_failed_rows(nasty, tmp_path):
    (nasty / "broken.png").write_bytes(DIGIT[:100])
    out = tmp_path / "f.csv"
    assert classify([str(nasty / "broken.png"), "--model", "mnist-cnn", "--out", str(out)]) == 1
    assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--resume"]) == 1
    assert classify([str(nasty / "plain.png"), "--model", "mnist-cnn", "--out", str(out), "--resume"]) == 0
    assert len(read_csv(out)) == len(NASTY_NAMES) + 1


# --- decoders that raise or crash -----------------------------------------------------------------

POISON = b"poison"


def poisoned(real, action):
    def prepare(data, spec):
        if POISON in data:
            action()
        return real(data, spec)
    return prepare


@pytest.mark.parametrize("error", [SyntaxError("bad EXIF"), struct.error("unpack requires a buffer"), TypeError("None")])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_unexpected_decoder_exception_is_an_error_row(nasty, tmp_path, monkeypatch, error, workers):
    def fail():
        raise error
    monkeypatch.setattr(demo.batch.job, "candidate_pictures", poisoned(demo.batch.job.candidate_pictures, fail))
    (nasty / "poison.png").write_bytes(DIGIT + POISON)
    out = tmp_path / "p.csv"
    for resume in ([], ["--resume"]):  # the resumed run does not stop on the same file again
        assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--workers", workers, *resume]) == 1
    rows = {r["path"]: r for r in read_csv(out)}
    assert len(rows) == len(NASTY_NAMES) + 1 == len(read_csv(out))
    assert rows[str(nasty / "poison.png")]["error"].startswith("cannot decode: ")  # plain words (issue 22):
    assert type(error).__name__ not in rows[str(nasty / "poison.png")]["error"]  # no Python exception's name
    assert sum(r["label"] == "7" for r in rows.values()) == len(NASTY_NAMES)


def test_the_crafted_fuzz_cases_each_get_one_row_and_resume_adds_none(tmp_path):
    """tests/fuzz_cases: files that once escaped the decoder's error handling, through the real CLI."""
    cases = sorted((ROOT / "tests" / "fuzz_cases").iterdir())
    assert len(cases) >= 8
    out = tmp_path / "fuzz.csv"
    for resume in ([], ["--resume"]):
        result = cli(ROOT / "tests" / "fuzz_cases", "--model", "mnist-cnn", "--out", out, "--workers", "2", *resume)
        assert result.returncode in (0, 1) and b"Traceback" not in result.stderr, result.stderr
    assert sorted(r["path"] for r in read_csv(out)) == [str(p) for p in cases if demo.batch.inputs.is_image_name(p.name)]


def test_a_decoder_that_kills_its_process_costs_one_row(nasty, tmp_path, monkeypatch):
    parent = os.getpid()

    def crash():
        if os.getpid() != parent:  # only ever in a worker
            faulthandler.disable()  # pytest's would print the dying worker's stack
            os.kill(os.getpid(), signal.SIGSEGV)
    monkeypatch.setattr(demo.batch.job, "candidate_pictures", poisoned(demo.batch.job.candidate_pictures, crash))
    (nasty / "poison.png").write_bytes(DIGIT + POISON)
    out = tmp_path / "c.csv"
    assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(out), "--workers", "2"]) == 1
    rows = {r["path"]: r for r in read_csv(out)}
    assert "died on this file (killed by SIGSEGV)" in rows[str(nasty / "poison.png")]["error"]
    assert sum(r["label"] == "7" for r in rows.values()) == len(NASTY_NAMES) == len(rows) - 1


# --- archives -------------------------------------------------------------------------------

def central_entries(data: bytes):
    """-> (name, offset of the central directory record, offset of the local header) per member."""
    eocd = data.rfind(b"PK\x05\x06")
    count, _, offset = struct.unpack_from("<HII", data, eocd + 10)
    for _ in range(count):
        n, m, k = struct.unpack_from("<HHH", data, offset + 28)
        local = struct.unpack_from("<I", data, offset + 42)[0]
        yield data[offset + 46:offset + 46 + n].decode(), offset, local
        offset += 46 + n + m + k


def patch_zip(data: bytes, name: str, *, flag=None, method=None, size=None) -> bytes:
    """Rewrite a member's headers (central and local) as a crafted archive would have them."""
    data = bytearray(data)
    for member, central, local in list(central_entries(bytes(data))):
        if member != name:
            continue
        for field, value, at_central, at_local in (("flag", flag, 8, 6), ("method", method, 10, 8)):
            if value is not None:
                struct.pack_into("<H", data, central + at_central, value)
                struct.pack_into("<H", data, local + at_local, value)
        if size is not None:
            struct.pack_into("<I", data, central + 24, size)
            struct.pack_into("<I", data, local + 22, size)
    return bytes(data)


def hostile_zip(path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ok.png", DIGIT)
        z.writestr("claims-1GiB.png", DIGIT)
        z.writestr("lies-small.png", bytes(60 * 2**20))  # 60 MiB of zeros, ~60 KB compressed
        z.writestr("encrypted.png", DIGIT)
        z.writestr("method99.png", DIGIT)
        z.writestr("corrupt.png", DIGIT)
        z.writestr("ok2.png", DIGIT)
    data = patch_zip(buffer.getvalue(), "claims-1GiB.png", size=2**30)
    data = patch_zip(data, "lies-small.png", size=1000)
    data = patch_zip(data, "encrypted.png", flag=0x1)
    data = patch_zip(data, "method99.png", method=99)
    [local] = [loc for name, _, loc in central_entries(data) if name == "corrupt.png"]
    data = data[:local + 60] + bytes(b ^ 0x5A for b in data[local + 60:local + 300]) + data[local + 300:]
    path.write_bytes(data)
    return path


def test_hostile_zip_members_are_error_rows_and_the_rest_is_classified(tmp_path, monkeypatch):
    archive = hostile_zip(tmp_path / "hostile.zip")
    assert archive.stat().st_size < 2**20
    read = []
    real_read = demo.batch.inputs.read_member
    monkeypatch.setattr(demo.batch.inputs, "read_member", lambda item: read.append(item.name) or real_read(item))
    out = tmp_path / "z.csv"
    assert classify([str(archive), "--model", "mnist-cnn", "--out", str(out), "--workers", "1"]) == 1
    rows = {r["path"].split("::")[1]: r for r in read_csv(out)}
    assert [rows[n]["label"] for n in ("ok.png", "ok2.png")] == ["7", "7"]
    assert "larger than 50 MiB (per its header)" in rows["claims-1GiB.png"]["error"]
    assert not any("claims-1GiB" in name or "encrypted" in name for name in read)  # refused from the header
    assert "corrupt archive member" in rows["lies-small.png"]["error"]  # read stops at the declared size
    assert "encrypted" in rows["encrypted.png"]["error"]
    assert "unsupported compression" in rows["method99.png"]["error"]
    assert "corrupt archive member" in rows["corrupt.png"]["error"]


def test_tar_links_and_devices_are_error_rows(tmp_path):
    archive = tmp_path / "odd.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        info = tarfile.TarInfo("real.png")
        info.size = len(DIGIT)
        t.addfile(info, io.BytesIO(DIGIT))
        for name, kind in (("sym.png", tarfile.SYMTYPE), ("hard.png", tarfile.LNKTYPE),
                           ("dev.png", tarfile.CHRTYPE), ("fifo.png", tarfile.FIFOTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "real.png"
            t.addfile(info)
    out = tmp_path / "t.jsonl"
    assert classify([str(archive), "--model", "mnist-cnn", "--out", str(out), "--workers", "2"]) == 1
    rows = {r["path"].split("::")[1]: r for r in read_jsonl(out)}
    assert rows.pop("real.png")["label"] == "7"
    assert sorted(rows) == ["dev.png", "fifo.png", "hard.png", "sym.png"]
    assert all("not a file" in r["error"] for r in rows.values())


def digit_tar(path: Path, names: list[str], **kw) -> bytes:
    with tarfile.open(path, "w", **kw) as t:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = len(DIGIT)
            t.addfile(info, io.BytesIO(DIGIT))
    return path.read_bytes()


def test_a_tar_broken_after_its_first_member_keeps_it_and_says_so(tmp_path):
    """tarfile ends its member list quietly at a bad header after the first: cut, or a checksum."""
    whole = digit_tar(tmp_path / "six.tar", [f"m{i}.png" for i in range(6)])
    second = tarfile.BLOCKSIZE + -(-len(DIGIT) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    (tmp_path / "cut.tar").write_bytes(whole[:second + 300])
    checksum = bytearray(whole)
    checksum[second + 148:second + 156] = b"9999999\0"  # the second header's checksum field
    (tmp_path / "checksum.tar").write_bytes(checksum)
    (tmp_path / "text.tar").write_bytes(b"not a tar at all " * 100)
    out = tmp_path / "t.csv"
    names = ["cut.tar", "checksum.tar", "text.tar", "six.tar"]
    assert classify([*(str(tmp_path / n) for n in names), "--model", "mnist-cnn", "--out", str(out)]) == 1
    rows = {Path(r["path"]).name: r for r in read_csv(out)}
    assert [rows[f"{n}::m0.png"]["label"] for n in ("cut.tar", "checksum.tar")] == ["7", "7"]
    for broken in ("cut.tar", "checksum.tar"):
        assert "damaged header where the next member should be" in rows[broken]["error"]
    not_tar = "unreadable archive: not a tar archive (or a damaged one), whatever its name says"
    assert rows["text.tar"]["error"] == not_tar
    assert sum(name.startswith("six.tar::") for name in rows) == 6 and "six.tar" not in rows
    assert len(rows) == 2 * 2 + 1 + 6


def test_members_of_one_name_each_get_a_row(tmp_path):
    archive = tmp_path / "twice.zip"
    with zipfile.ZipFile(archive, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("a.png", DIGIT)
        z.writestr("a.png", b"not a picture")
    out = tmp_path / "z.csv"
    assert classify([str(archive), "--model", "mnist-cnn", "--out", str(out)]) == 1
    rows = read_csv(out)
    assert [(r["path"], r["label"]) for r in rows] == [(f"{archive}::a.png", "7"), (f"{archive}::a.png#2", "")]
    assert "not an image" in rows[1]["error"]


def test_a_path_longer_than_csvs_field_limit_resumes(tmp_path):
    archive = tmp_path / "long.tar"
    digit_tar(archive, ["d/" * 70_000 + "x.png"], format=tarfile.PAX_FORMAT)  # a 140 KB member name
    out = tmp_path / "long.csv"
    assert classify([str(archive), "--model", "mnist-cnn", "--out", str(out)]) == 0
    written = out.read_bytes()
    assert classify([str(archive), "--model", "mnist-cnn", "--out", str(out), "--resume"]) == 0
    assert out.read_bytes() == written


def test_archive_members_stream_into_batches(tmp_path, monkeypatch):
    """The first rows are written after one batch of members is read, not the whole archive."""
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(40):
            z.writestr(f"{i:02d}.png", DIGIT)
    read, at_first_write = [], []
    real_read, real_write = demo.batch.inputs.read_member, demo.batch.output.RowWriter.write
    monkeypatch.setattr(demo.batch.inputs, "read_member", lambda item: read.append(1) or real_read(item))
    monkeypatch.setattr(demo.batch.output.RowWriter, "write",
                        lambda self, rows: at_first_write.append(len(read)) or real_write(self, rows))
    out = tmp_path / "m.csv"
    assert classify([str(archive), "--model", "mnist-cnn", "--out", str(out), "--workers", "1", "--batch-size", "4"]) == 0
    assert at_first_write[0] == 4 and len(read) == 40 and len(read_csv(out)) == 40


# --- symlinks, directories, special files -------------------------------------------------------

@pytest.fixture()
def links(tmp_path) -> Path:
    top = tmp_path / "links"
    (top / "d" / "sub").mkdir(parents=True)
    (top / "d" / "sub" / "one.png").write_bytes(DIGIT)
    (top / "d" / "two.png").write_bytes(DIGIT)
    os.symlink("..", top / "d" / "sub" / "up")  # a directory loop
    os.symlink("b.png", top / "a.png")  # a file loop
    os.symlink("a.png", top / "b.png")
    os.symlink("missing.png", top / "dangling.png")
    (top / "dir.png").mkdir()
    os.mkfifo(top / "fifo.png")
    return top


def test_named_links_dirs_and_fifos_each_get_an_error_row(links, tmp_path):
    out = tmp_path / "n.csv"
    names = ["a.png", "dangling.png", "dir.png", "fifo.png"]
    result = cli(*(links / n for n in names), "--model", "mnist-cnn", "--out", out, "--workers", "2")
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    errors = {os.path.basename(r["path"]): r["error"] for r in read_csv(out)}
    assert errors == {"a.png": "symbolic link loop", "dangling.png": "broken symbolic link (its target does not exist)",
                      "dir.png": "is a directory, not an image file", "fifo.png": "not a regular file"}


def test_a_walked_folders_links_and_fifos_are_named_as_when_named(links, tmp_path):
    out = tmp_path / "w.csv"
    result = cli(links, "--model", "mnist-cnn", "--out", out, "--workers", "2")
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    errors = {os.path.basename(r["path"]): r["error"] for r in read_csv(out)}
    assert errors["dangling.png"] == "broken symbolic link (its target does not exist)"
    assert errors["a.png"] == "symbolic link loop" and errors["fifo.png"] == "not a regular file"


@pytest.mark.parametrize("pattern", ["{top}/d", "{top}/d/**/*.png", "{top}/**"])
def test_directory_loops_end_and_give_each_file_once(links, tmp_path, pattern):
    out = tmp_path / "l.csv"
    result = cli(pattern.format(top=links), "--recursive", "--model", "mnist-cnn", "--out", out, timeout=60)
    assert b"Traceback" not in result.stderr, result.stderr
    rows = read_csv(out)
    ok = sorted(r["path"] for r in rows if not r["error"])
    assert len(ok) == len(set(ok)) and [os.path.basename(p) for p in ok] == ["one.png", "two.png"]
    if pattern.endswith("**"):  # the glob names the odd entries at the top too: each gets its row
        assert sorted(os.path.basename(r["path"]) for r in rows if r["error"]) == [
            "a.png", "b.png", "dangling.png", "dir.png", "fifo.png"]


# --- output errors and broken resume files --------------------------------------------------------

def one_clear_line(result, code=2) -> str:
    err = result.stderr.decode()
    assert result.returncode == code and "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_output_errors_are_one_line_exit_2(nasty, tmp_path):
    png = nasty / "plain.png"
    assert "No such file or directory" in one_clear_line(cli(png, "--model", "mnist-cnn", "--out", tmp_path / "no/such/r.csv"))
    (tmp_path / "adir.csv").mkdir()
    assert "Is a directory" in one_clear_line(cli(png, "--model", "mnist-cnn", "--out", tmp_path / "adir.csv"))
    assert "No space left" in one_clear_line(cli(png, "--model", "mnist-cnn", "--out", "/dev/full", "--format", "csv"))
    assert "Permission denied" in one_clear_line(cli(png, "--model", "mnist-cnn", "--out", "/sys/results.csv"))


def test_read_only_output_file(capsys):
    """As a user who may not write the file (root may write anything: then as nobody, for the run)."""
    with tempfile.TemporaryDirectory() as shared:
        os.chmod(shared, 0o755)
        png, out = Path(shared) / "x.png", Path(shared) / "ro.csv"
        png.write_bytes(DIGIT)
        out.write_text("")
        os.chmod(out, 0o444)
        root = os.geteuid() == 0
        if root:
            os.seteuid(65534)
        try:
            status = classify([str(png), "--model", "mnist-cnn", "--out", str(out), "--workers", "1"])
        finally:
            if root:
                os.seteuid(0)
    assert status == 2 and "Permission denied" in capsys.readouterr().err


def test_closed_pipe_is_one_line_exit_2(nasty):
    proc = subprocess.Popen([sys.executable, "-m", "demo.cli", "classify", str(nasty), "--model", "mnist-cnn"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `| head -0` would
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 2 and "broken pipe" in err and "Traceback" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize("name, content", [
    ("other.csv", b"a,b,c\r\n1,2,3\r\n"),
    ("ragged.csv", ",".join(row_fields(3)).encode() + b"\r\nx.png,7\r\n"),
    ("binary.csv", bytes(range(256))),
    ("text.jsonl", b"hello\n"),
    ("other.jsonl", b'{"a": 1}\n'),
    ("list.jsonl", b"[1, 2]\n"),
    ("deep.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n"),  # deeper than json's parser recurses
    ("huge-field.csv", ",".join(row_fields(3)).encode() + b"\r\n" + b"x" * 200_000 + b"\r\n"),
])
def test_broken_resume_files_are_refused_untouched(nasty, tmp_path, name, content):
    out = tmp_path / name
    out.write_bytes(content)
    result = cli(nasty / "plain.png", "--model", "mnist-cnn", "--out", out, "--resume")
    assert "--resume" in one_clear_line(result)
    assert out.read_bytes() == content


# --- signals ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slow_inputs(tmp_path_factory) -> Path:
    """4,000 large PNGs: with two workers, a run of many seconds on any machine."""
    folder = tmp_path_factory.mktemp("slow")
    big = drawn_digit_png(size=900, width=60)
    for i in range(4000):
        (folder / f"{i:04d}.png").write_bytes(big)
    return folder


def start(slow_inputs, out):
    return subprocess.Popen([sys.executable, "-m", "demo.cli", "classify", str(slow_inputs), "--model", "mnist-cnn",
                             "--out", str(out), "--batch-size", "8", "--workers", "2"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def wait_for_rows(out: Path, proc, rows: int = 3) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") > rows:
            return
        time.sleep(0.05)
    pytest.fail(f"no rows appeared: {proc.stderr.read().decode() if proc.poll() is not None else 'still running'}")


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("to_group", [True, False])
def test_a_signal_stops_the_run_within_5s_with_every_row_kept(slow_inputs, tmp_path, signum, to_group):
    out = tmp_path / "sig.csv"
    proc = start(slow_inputs, out)
    wait_for_rows(out, proc)
    (os.killpg if to_group else os.kill)(proc.pid, signum)
    err = proc.communicate(timeout=5)[1].decode()
    assert proc.returncode == 128 + signum and "Traceback" not in err, err
    assert f"stopped by {signum.name}" in err
    rows = read_csv(out)
    assert 0 < len(rows) < 4000 and len({r["path"] for r in rows}) == len(rows)
    assert all(r["label"] == "7" for r in rows)
    for _ in range(50):  # no worker outlives the run
        if group_gone(proc.pid):
            break
        time.sleep(0.1)
    assert group_gone(proc.pid)


def test_a_second_resume_while_a_run_writes_refuses_and_adds_nothing(slow_inputs, tmp_path, capsys):
    out = tmp_path / "busy.csv"
    proc = start(slow_inputs, out)
    wait_for_rows(out, proc)
    try:
        assert classify([str(slow_inputs), "--model", "mnist-cnn", "--out", str(out), "--resume"]) == 2
        assert "another tinyzoo classify is writing" in capsys.readouterr().err
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=10)
    rows = read_csv(out)
    assert len({r["path"] for r in rows}) == len(rows) and all(r["path"] != "path" for r in rows)  # no 2nd header


def test_timeout_command_ends_the_run_at_its_term_signal(slow_inputs, tmp_path):
    """`timeout -k 30 3 tinyzoo classify ...`: SIGTERM to the whole group ends it, not the KILL 30 s later."""
    out = tmp_path / "t.jsonl"
    started = time.monotonic()
    result = subprocess.run(["timeout", "-k", "30", "3", sys.executable, "-m", "demo.cli", "classify", str(slow_inputs),
                             "--model", "mnist-cnn", "--out", str(out), "--batch-size", "8", "--workers", "2"],
                            cwd=ROOT, capture_output=True, timeout=60)
    assert result.returncode == 124 and time.monotonic() - started < 3 + 5, result.stderr
    assert b"stopped by SIGTERM" in result.stderr and b"Traceback" not in result.stderr
    rows = read_jsonl(out)  # every line whole
    assert len({r["path"] for r in rows}) == len(rows) < 4000


def interrupt_then(real):
    def call(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C landing right then
        return real(*args, **kwargs)
    return call


@pytest.mark.parametrize("where", [(demo.batch.local, "image_model_row"), (demo.batch.local, "list_items"),
                                   (demo.batch.pool.Worker, "__init__"), (demo.batch.local, "load_model"),
                                   (demo.batch.job, "open_output")])
def test_sigint_during_start_up_exits_130_quietly(nasty, tmp_path, capsys, monkeypatch, where):
    monkeypatch.setattr(*where, interrupt_then(getattr(*where)))
    assert classify([str(nasty), "--model", "mnist-cnn", "--out", str(tmp_path / "s.csv"), "--workers", "2"]) == 130
    err = capsys.readouterr().err
    assert "stopped by SIGINT" in err and "Traceback" not in err
    assert multiprocessing.active_children() == []  # no worker left behind


def test_sigint_while_the_command_loads_exits_130(monkeypatch):
    """Ctrl-C landing inside the import, raised there: a real SIGINT sent to the process may be
    handled only after an import already cached returns (another thread takes the signal on a
    loaded machine), and --help then exits 0."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(demo.cli.importlib, "import_module", interrupted)
    assert demo.cli.main(["classify", "--help"]) == 130
