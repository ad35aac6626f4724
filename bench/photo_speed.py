"""Phone photos (3000-4000 px long side, up to 12 MP): how long the server and the CLI take, against a
plain full-size decode.

    python -m bench.photo_speed                   # 48 photos, mnist-cnn
    python -m bench.photo_speed --n 64 --port 7752
    python -m bench.photo_speed --baseline /tmp/before    # another checkout's code as "before", in turn

Rows, in one run: a plain full-size Pillow decode (open + load) of each JPEG; the same decode
DCT-scaled to 1/8, the least any reduced decode can cost (Huffman decoding is not scaled); the server's
`POST /api/classify` round trip (JPEGs decode DCT-scaled, demo/imaging/prepare.py draft) and the
pages the server's kernel mapped fresh for it (minor page faults, read off /proc); `tinyzoo
classify` on the folder against the course-style loop (full decode, grey, resize to 28x28, one
model call per image) with the same model: wall time with the CLI's process start, and the
steady-state rate (images/s after start-up, from the CLI's own summary line).
"""
import argparse
import io
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.photo_scenes import digit_photo
from bench.photos import ROOT, Server, classify_in
from bench.report import print_table
from demo.contract import normalize
from demo.inference.runtime import ModelZoo
from training.data import load_split


def median_ms(fn, items) -> float:
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def full_decode(data: bytes) -> None:
    Image.open(io.BytesIO(data)).load()


def eighth_decode(data: bytes) -> None:
    """The least a JPEG decoder can do: DCT-scaled to 1/8 (the entropy decoding is not scaled)."""
    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (img.width // 8, img.height // 8))
    img.load()


def course_loop(paths: list[Path], model) -> list[int]:
    """What a course notebook does: full decode, grey, squash to 28x28, invert, one call each."""
    labels = []
    for path in paths:
        grey = np.asarray(Image.open(path).convert("L").resize((28, 28), Image.Resampling.BILINEAR))
        labels.append(int(model.run(normalize(255 - grey, model.meta.input)[None]).argmax()))
    return labels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=48, help="how many phone photos (default 48)")
    p.add_argument("--model", default="mnist-cnn")
    p.add_argument("--port", type=int, default=7752, help="this code's server; the baseline's is port + 1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline", default=None,
                   help="a checkout whose code gives a 'before' column: its server and this one's take the photos in "
                        "turn, photo by photo, and the CLIs run in turn (this machine's speed drifts by a third)")
    p.add_argument("--cli-runs", type=int, default=3, help="CLI runs per checkout, the median reported (default 3)")
    args = p.parse_args()

    images, _ = load_split("mnist", "test")
    rng = np.random.default_rng(args.seed)
    photos = [digit_photo(images[i], "phone frame", rng) for i in range(args.n)]
    sizes = [Image.open(io.BytesIO(d)).size for d in photos]
    print(f"{args.n} phone photos, {np.mean([w * h for w, h in sizes]) / 1e6:.1f} MP on average")
    checkouts = {"before": Path(args.baseline), "after": ROOT} if args.baseline else {"this code": ROOT}

    decode_ms = median_ms(full_decode, photos)
    eighth_ms = median_ms(eighth_decode, photos)
    server_ms = servers_in_turn(checkouts, args.port, args.model, photos)
    model = ModelZoo(provider="cpu").get(args.model)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, data in enumerate(photos):
            paths.append(Path(folder) / f"{i:03d}.jpg")
            paths[-1].write_bytes(data)
        started = time.perf_counter()
        course_loop(paths, model)
        course_s = time.perf_counter() - started
        cli = clis_in_turn(checkouts, folder, args.model, args.cli_runs)

    rate = args.n / course_s
    rows = [("plain full-size Pillow decode, median per photo", *[f"{decode_ms:.1f} ms", "1.00"] * len(checkouts)),
            ("JPEG decode DCT-scaled to 1/8 (a decoder's floor), median",
             *[f"{eighth_ms:.1f} ms", f"{eighth_ms / decode_ms:.2f}"] * len(checkouts)),
            ("server POST /api/classify round trip, median",
             *[cell for ms, _ in server_ms.values() for cell in (f"{ms:.1f} ms", f"{ms / decode_ms:.2f}")]),
            ("the server's minor page faults per photo", *[cell for _, faults in server_ms.values()
                                                          for cell in (f"{faults:,.0f}", "")]),
            (f"course-style loop over the folder ({args.n} photos)", *[f"{course_s:.2f} s", "1.00"] * len(checkouts)),
            ("tinyzoo classify on the folder (process start included), median",
             *[cell for wall, _ in cli.values() for cell in (f"{wall:.2f} s", f"{course_s / wall:.1f}x faster")]),
            ("course-style loop, images/s", *[f"{rate:.1f}", "1.00"] * len(checkouts)),
            ("tinyzoo classify after start-up, images/s, median",
             *[cell for _, cli_rate in cli.values() for cell in (f"{cli_rate:.1f}", f"{cli_rate / rate:.1f}x faster")])]
    print_table(["what", *[f"{name}: {column}" for name in checkouts for column in ("time", "ratio")]], rows)


def servers_in_turn(checkouts: dict, port: int, model: str, photos: list[bytes]) -> dict:
    """{name: (median round-trip ms, the server's minor page faults per photo)}: each checkout's
    server asked for every photo, one after another."""
    servers = {}
    try:
        for i, (name, checkout) in enumerate(checkouts.items()):
            servers[name] = Server(checkout, port + i, None)
        times, faults = {name: [] for name in servers}, {name: 0 for name in servers}
        for data in photos:
            for name, server in servers.items():
                before, started = minor_faults(server.process.pid), time.perf_counter()
                server.request("POST", f"/api/classify?model={model}", data)
                times[name].append(time.perf_counter() - started)
                faults[name] += minor_faults(server.process.pid) - before
    finally:
        for server in servers.values():
            server.close()
    return {name: (float(np.median(t) * 1000), faults[name] / len(photos)) for name, t in times.items()}


def minor_faults(pid: int) -> int:
    """A process's minor page faults so far (/proc/PID/stat, field 10): each is a fresh page the
    kernel maps and zeroes, a few microseconds apiece on a VM."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def clis_in_turn(checkouts: dict, folder: str, model: str, runs: int) -> dict:
    """{name: (median wall s, median images/s after start-up)}, the checkouts' CLIs run in turn."""
    results = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as out:
        for run in range(runs):
            for i, (name, checkout) in enumerate(checkouts.items()):
                results[name].append(run_cli(checkout, folder, model, Path(out) / f"{run}-{i}.csv"))
    return {name: tuple(float(np.median(column)) for column in zip(*rs)) for name, rs in results.items()}


def run_cli(checkout: Path, folder: str, model: str, out: Path) -> tuple[float, float]:
    """-> (wall seconds, process start included; images/s from its summary line, start-up excluded)."""
    cli = "import sys; from demo.batch.classify import main; sys.exit(main(sys.argv[1:]))"
    done, wall = classify_in(checkout, cli, [folder, "--model", model, "--out", str(out)])
    if done.returncode not in (0, 1):  # 1: some photos had no digit found, a row with the error each
        raise SystemExit(f"tinyzoo classify exited with {done.returncode}: {done.stderr[-500:]}")
    return wall, float(re.search(r"([\d,.]+) images/s", done.stderr).group(1).replace(",", ""))

if __name__ == "__main__":
    main()
