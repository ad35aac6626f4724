"""Mutation fuzzer for the shared decode path: mutated PNG/JPEG/WebP/GIF/TIFF/BMP files go through
demo.imaging.prepare.preprocess with the mnist and fashion input specs. The only acceptable outcomes
are a picture or an ImageInputError (EmptyImageError included): anything else is a crash, recorded
with its signature (exception type + the innermost frame) and the smallest input that raised it;
an input taking more than --slow CPU seconds is recorded too.

Mutations (1-4 per input, seeded): bit flips, byte sets, inserts, deletes, chunk splices (a chunk
duplicated, dropped or taken from another seed), length-field edits (PNG/RIFF/JPEG/BMP lengths and
sizes, TIFF counts and offsets) and EXIF/TIFF tag edits (type, count, value, tag id).

    python -m bench.fuzz_decode --mutations 100000 --seed 0      # the long run (issue #13)
    python -m bench.fuzz_decode --mutations 10000 --save runs/fuzz   # `make fuzz`

Exit status 1 when any crash was found (slow inputs are listed, but a timing is no verdict on a shared machine).
"""
import argparse
import contextlib
import os
import re
import struct
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.fuzz_seeds import byte_order, crafted, ifd_entries, seeds
from bench.report import print_table
from demo.imaging.prepare import ImageInputError, UnexpectedImageError, preprocess
from demo.inference.runtime import ModelZoo

SPEC_MODELS = ("mnist-cnn", "fashion-cnn")
BOUNDARY_VALUES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                   0xFFFFFFFF)


@dataclass(frozen=True)
class Field:
    """An integer field in a file: a length, size, count or offset the decoder trusts."""
    offset: int
    fmt: str  # struct format with byte order: '>I', '<H', ...


@dataclass
class Layout:
    """What the structure-aware mutations need to know about one seed."""
    fields: list[Field]  # length / size / count fields
    entries: list[tuple[int, str]]  # EXIF/TIFF IFD entries: (offset of the 12-byte entry, byte order)
    chunks: list[tuple[int, int]]  # (start, end) of whole chunks / segments


def png_layout(data: bytes) -> tuple[list[Field], list[tuple[int, int]]]:
    fields, chunks, pos = [], [], 8
    while pos + 12 <= len(data):
        length = struct.unpack_from(">I", data, pos)[0]
        fields.append(Field(pos, ">I"))
        if data[pos + 4:pos + 8] == b"IHDR":
            fields += [Field(pos + 8, ">I"), Field(pos + 12, ">I")]  # width, height
        chunks.append((pos, min(len(data), pos + 12 + length)))
        pos += 12 + length
    return fields, chunks


def riff_layout(data: bytes) -> tuple[list[Field], list[tuple[int, int]]]:
    fields, chunks, pos = [Field(4, "<I")], [], 12
    while pos + 8 <= len(data):
        size = struct.unpack_from("<I", data, pos + 4)[0]
        fields.append(Field(pos + 4, "<I"))
        chunks.append((pos, min(len(data), pos + 8 + size + (size & 1))))
        pos += 8 + size + (size & 1)
    return fields, chunks


def jpeg_layout(data: bytes) -> tuple[list[Field], list[tuple[int, int]]]:
    fields, chunks, pos = [], [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], struct.unpack_from(">H", data, pos + 2)[0]
        fields.append(Field(pos + 2, ">H"))
        if marker in (0xC0, 0xC1, 0xC2):  # SOF: height, width
            fields += [Field(pos + 5, ">H"), Field(pos + 7, ">H")]
        chunks.append((pos, min(len(data), pos + 2 + length)))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        pos += 2 + length
    return fields, chunks


BMP_FIELDS = [Field(2, "<I"), Field(10, "<I"), Field(14, "<I"), Field(18, "<i"), Field(22, "<i"), Field(28, "<H"),
              Field(30, "<I"), Field(46, "<I")]  # file size, pixel offset, header size, w, h, bpp, compression, colours
GIF_FIELDS = [Field(6, "<H"), Field(8, "<H")]  # logical screen width, height


def layout(data: bytes) -> Layout:
    fields, chunks = [], []
    if data.startswith(b"\x89PNG"):
        fields, chunks = png_layout(data)
    elif data.startswith(b"RIFF"):
        fields, chunks = riff_layout(data)
    elif data.startswith(b"\xff\xd8"):
        fields, chunks = jpeg_layout(data)
    elif data.startswith(b"BM"):
        fields = list(BMP_FIELDS)
    elif data.startswith(b"GIF"):
        fields = list(GIF_FIELDS)
    tiff_starts = [0] if data[:4] in (b"II*\x00", b"MM\x00*") else []
    tiff_starts += [m.end() for m in re.finditer(rb"Exif\x00\x00", data)]
    tiff_starts += [m.end() for m in re.finditer(rb"eXIf", data)]  # PNG: the block follows the chunk type
    tiff_starts += [m.end() + 4 for m in re.finditer(rb"EXIF", data)]  # WebP: after the chunk's size
    entries = [entry for base in tiff_starts for entry in ifd_entries(data, base)]
    for base in tiff_starts:
        order = byte_order(data, base)
        if order and len(data) >= base + 8:
            fields.append(Field(base + 4, order + "I"))  # where the first IFD is
    fields += [Field(entry + at, order + "I") for entry, order in entries for at in (4, 8)]  # count, value
    return Layout(fields, entries, chunks)


class Mutator:
    def __init__(self, corpus: dict[str, bytes], rng: np.random.Generator):
        self.names = sorted(corpus)
        self.corpus = corpus
        self.layouts = {name: layout(data) for name, data in corpus.items()}
        self.rng = rng

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def mutate(self, name: str) -> bytes:
        """1-4 mutations of seed `name`. In-place field edits come first, while the seed's layout
        still describes the bytes; then the length-changing ones."""
        data, lay = bytearray(self.corpus[name]), self.layouts[name]
        structural = [m for m, ok in (("length", lay.fields), ("exif", lay.entries), ("splice", lay.chunks)) if ok]
        kinds = [self.pick(structural + ["flip", "set", "insert", "delete", "copy"])
                 for _ in range(1 + int(self.rng.integers(4)))]
        kinds.sort(key=lambda k: ("length", "exif", "flip", "set", "splice", "insert", "delete", "copy").index(k))
        for kind in kinds:
            data = getattr(self, kind)(data, lay, name)
        return bytes(data)

    def boundary(self, old: int, bits: int) -> int:
        candidates = [*BOUNDARY_VALUES, old + 1, old - 1, old * 2, old // 2, int(self.rng.integers(1 << 32))]
        return self.pick(candidates) % (1 << bits)

    def length(self, data, lay, _):
        f = self.pick(lay.fields)
        if f.offset + struct.calcsize(f.fmt) > len(data):
            return data
        old = struct.unpack_from(f.fmt, data, f.offset)[0]
        value = self.boundary(old, 8 * struct.calcsize(f.fmt))
        if f.fmt[-1].islower():  # signed
            value = value - (1 << 8 * struct.calcsize(f.fmt)) if value >= 1 << (8 * struct.calcsize(f.fmt) - 1) else value
        struct.pack_into(f.fmt, data, f.offset, value)
        return data

    def exif(self, data, lay, _):
        entry, order = self.pick(lay.entries)
        part = int(self.rng.integers(4))
        if part == 0:  # tag id: another real tag (orientation among them), same value
            struct.pack_into(order + "H", data, entry, self.pick((0x0112, 0x0100, 0x0101, 0x0102, 0x0103, 0x0106,
                                                                  0x0111, 0x0115, 0x0116, 0x0117, 0x0140, 0x8769,
                                                                  0x8825, 0x927C, 0x9286, 0x013B, 0x0153)))
        elif part == 1:  # type, including the invalid 0 and the ones past 13
            struct.pack_into(order + "H", data, entry + 2, int(self.rng.integers(20)))
        elif part == 2:  # count
            struct.pack_into(order + "I", data, entry + 4, self.boundary(struct.unpack_from(order + "I", data, entry + 4)[0], 32))
        else:  # the value (or the offset to it)
            struct.pack_into(order + "I", data, entry + 8, self.boundary(struct.unpack_from(order + "I", data, entry + 8)[0], 32))
        return data

    def flip(self, data, *_):
        for _ in range(1 + int(self.rng.integers(8))):
            data[int(self.rng.integers(len(data)))] ^= 1 << int(self.rng.integers(8))
        return data

    def set(self, data, *_):
        pos = int(self.rng.integers(len(data)))
        data[pos] = self.pick((0, 0xFF, 0x7F, 0x80, int(self.rng.integers(256))))
        return data

    def span(self, size: int) -> tuple[int, int]:
        start = int(self.rng.integers(size))
        return start, min(size, start + 1 + int(self.rng.integers(min(64, size))))

    def insert(self, data, *_):
        pos = int(self.rng.integers(len(data) + 1))
        return data[:pos] + bytes(self.rng.integers(256, size=1 + int(self.rng.integers(32)), dtype=np.uint8)) + data[pos:]

    def delete(self, data, *_):
        if len(data) < 2:
            return data
        start, end = self.span(len(data))
        return data[:start] + data[end:]

    def copy(self, data, _lay, _name):
        """A run of bytes from any seed, pasted over or into this one."""
        donor = self.corpus[self.pick(self.names)]
        start, end = self.span(len(donor))
        pos = int(self.rng.integers(len(data) + 1))
        tail = data[pos + (end - start):] if self.rng.integers(2) else data[pos:]
        return data[:pos] + donor[start:end] + tail

    def splice(self, data, lay, name):
        """Whole chunks: one duplicated, dropped, or swapped for a chunk of another seed of the same format."""
        start, end = self.pick(lay.chunks)
        if end > len(data):
            return data
        action = int(self.rng.integers(3))
        if action == 0:
            return data[:end] + data[start:end] + data[end:]
        if action == 1:
            return data[:start] + data[end:]
        same_format = [n for n in self.names if n.rsplit(".", 1)[1] == name.rsplit(".", 1)[1] and self.layouts[n].chunks]
        donor = self.pick(same_format)
        d_start, d_end = self.pick(self.layouts[donor].chunks)
        return data[:start] + self.corpus[donor][d_start:d_end] + data[end:]


def signature(exc: BaseException) -> str:
    """Exception type + innermost frame (file:function): one bug, one signature, whatever the bytes."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{name} at {Path(frame.filename).name}:{frame.name}"


def check(data: bytes, specs: list[dict]) -> str | None:
    """None when the input gave a picture or an ImageInputError for every spec; else a signature."""
    for spec in specs:
        try:
            preprocess(data, spec)
        except UnexpectedImageError as e:  # preprocess's safety net caught a crash: still a crash
            return signature(e.__context__)
        except ImageInputError:
            return None  # the same bytes fail the same way for the other spec
        except Exception as e:  # exactly what the fuzzer is looking for
            return signature(e)
    return None


@dataclass
class Findings:
    crashes: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # signature -> (seed name, smallest input)
    counts: dict[str, int] = field(default_factory=dict)
    slow: list[tuple[float, str, bytes]] = field(default_factory=list)

    def add(self, sig: str, seed: str, data: bytes) -> None:
        self.counts[sig] = self.counts.get(sig, 0) + 1
        if sig not in self.crashes or len(data) < len(self.crashes[sig][1]):
            self.crashes[sig] = (seed, data)

    def save(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for sig, (seed, data) in self.crashes.items():
            slug = re.sub(r"[^a-z0-9]+", "-", sig.lower()).strip("-")
            paths.append(folder / f"{slug}.{seed.rsplit('.', 1)[1]}")
            paths[-1].write_bytes(data)
        for i, (_, seed, data) in enumerate(sorted(self.slow, reverse=True)[:5]):
            paths.append(folder / f"slow-{i}.{seed.rsplit('.', 1)[1]}")
            paths[-1].write_bytes(data)
        return paths


@contextlib.contextmanager
def quiet_stderr():
    """libtiff writes a line to fd 2 for nearly every broken TIFF; the table is what matters here."""
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def fuzz(mutations: int, seed: int, slow_s: float, specs: list[dict], progress_every: int = 0) -> tuple[Findings, float]:
    corpus = {**seeds(), **crafted()}
    mutator = Mutator(corpus, np.random.default_rng(seed))
    findings = Findings()
    started = time.perf_counter()
    for i in range(mutations):
        name = mutator.pick(mutator.names)
        data = mutator.mutate(name)
        t0 = time.process_time()  # CPU seconds: on a shared machine the wall clock measures the neighbours
        sig = check(data, specs)
        elapsed = time.process_time() - t0
        if sig:
            findings.add(sig, name, data)
        if elapsed > slow_s:
            findings.slow.append((elapsed, name, data))
        if progress_every and (i + 1) % progress_every == 0:
            rate = (i + 1) / (time.perf_counter() - started)
            print(f"{i + 1:,} mutations, {rate:,.0f}/s, {len(findings.crashes)} crash signatures", flush=True)
    return findings, time.perf_counter() - started


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mutations", type=int, default=10_000, help="mutated inputs to try")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed replays the same inputs")
    p.add_argument("--slow", type=float, default=2.0, help="CPU seconds after which an input counts as slow")
    p.add_argument("--save", type=Path, default=None, help="write the smallest input per crash signature here")
    p.add_argument("--progress", type=int, default=10_000, help="print progress every N mutations (0: never)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)  # Pillow's "truncated file" chatter, thousands of times
    zoo = ModelZoo(provider="cpu")
    specs = [zoo.get(model_id).meta.input for model_id in SPEC_MODELS]
    with quiet_stderr():
        findings, seconds = fuzz(args.mutations, args.seed, args.slow, specs, args.progress)
    print(f"\n{args.mutations:,} mutations (seed {args.seed}) in {seconds:.0f} s: {args.mutations / seconds:,.0f}/s; "
          f"inputs over {args.slow:g} CPU s: {len(findings.slow)}")
    print_table(["crash signature", "seed", "hits", "smallest bytes"],
                [(sig, seed, findings.counts[sig], len(data)) for sig, (seed, data) in sorted(findings.crashes.items())])
    if findings.slow:
        print_table(["slow input (seed)", "CPU s", "bytes"],
                    [(seed, f"{t:.2f}", len(data)) for t, seed, data in sorted(findings.slow, reverse=True)[:5]])
    if args.save:
        for path in findings.save(args.save):
            print(f"saved {path}")
    return 1 if findings.crashes else 0  # slow inputs are reported, not failed: timings vary by machine


if __name__ == "__main__":
    raise SystemExit(main())
