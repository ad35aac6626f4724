"""Memory ceiling of a local `python -m demo` under worst-case uploads (loopback only).

The worst case under the 40 Mpx cap: a ~360 KB PNG declaring 6300x6300 16-bit RGBA, which decodes
and preprocesses at ~470 MB. N clients send it at once, first to the HTTP API, then through Gradio
(upload + call); each phase reports how the calls were answered and the server's peak RSS
(VmHWM, reset between phases). The decode budget (demo/imaging/budget.py) should hold the peak
under ~1.5 GB with every call answered: a label, or a clear 503 / "busy" message, never a 500.

    python -m bench.memory_ceiling                 # 32 clients
    python -m bench.memory_ceiling --clients 8 --side 4000
    python -m bench.memory_ceiling --root /tmp/before      # another checkout's server
"""
import argparse
import http.client
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.app_latency import ROOT, start_server
from bench.load_test import Client, rss_mib
from bench.report import print_table


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def worst_case_png(side: int) -> bytes:
    """16-bit RGBA, side x side: white paper with a dark stroke across the middle, two thirds of the
    width long and a twelfth of it thick (a square block would be refused as "only a dot" before its
    analysis); the rows repeat, so it compresses to a few hundred KB (written row by row: never
    side^2 in memory)."""
    third, thickness = side // 3, max(1, side // 12)
    white = b"\x00" + b"\xff" * (8 * side)  # filter byte 0, then 8 bytes per pixel
    ink = b"\x00" + b"".join([b"\xff" * 8] * (third // 2) + [b"\x00" * 6 + b"\xff" * 2] * (2 * third)
                             + [b"\xff" * 8] * (side - third // 2 - 2 * third))
    top = (side - thickness) // 2
    packer = zlib.compressobj(9)
    rows = [packer.compress(ink if top <= y < top + thickness else white) for y in range(side)]
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)  # 16-bit, colour type 6 = RGBA
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(rows) + packer.flush())
            + png_chunk(b"IEND", b""))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM back to the current RSS


def http_api(port: int, image: bytes) -> str:
    status, body = Client(port, timeout=300).request("POST", "/api/classify?model=mnist-cnn", image,
                                                     {"Content-Type": "application/octet-stream"})
    if status == 200 and b'"label"' in body:
        return "label"
    return "busy" if status in (429, 503) and b'"error"' in body else f"HTTP {status}"


def gradio(port: int, image: bytes) -> str:
    events = Client(port, timeout=300).gradio_events(image)
    if b"event: complete" in events and b'"label"' in events:
        return "label"
    return "busy" if b"busy" in events else "failed"


def run_phase(pid: int, port: int, call, image: bytes, clients: int) -> tuple[list[str], list[float], float]:
    """All clients at once, one call each -> (outcomes, seconds per call, peak RSS MiB during the phase)."""
    reset_peak(pid)

    def timed(_) -> tuple[str, float]:
        t0 = time.perf_counter()
        try:
            outcome = call(port, image)
        except (OSError, http.client.HTTPException) as e:
            outcome = type(e).__name__
        return outcome, time.perf_counter() - t0

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(timed, range(clients)))
    return [o for o, _ in results], [s for _, s in results], peak_rss_mib(pid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=32, help="concurrent worst-case uploads per phase")
    p.add_argument("--side", type=int, default=6300, help="the PNG's width and height (6300^2 is just under 40 Mpx)")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout whose server is measured (a baseline's)")
    args = p.parse_args()

    image = worst_case_png(args.side)
    proc, port = start_server(args.root)
    try:
        idle = rss_mib(proc.pid)
        phases = {"HTTP API": http_api, "Gradio": gradio}
        rows = []
        for name, call in phases.items():
            outcomes, seconds, peak = run_phase(proc.pid, port, call, image, args.clients)
            other = len(outcomes) - outcomes.count("label") - outcomes.count("busy")
            rows.append((name, args.clients, outcomes.count("label"), outcomes.count("busy"), other,
                         f"{np.median(seconds):.1f}", f"{max(seconds):.1f}", f"{peak:,.0f}"))
            if other:
                print(f"{name}: unexpected outcomes {sorted(set(outcomes) - {'label', 'busy'})}")
    finally:
        proc.terminate()
        proc.wait(10)

    print(f"\n{args.clients} concurrent uploads of a {len(image) / 1024:.0f} KB PNG declaring {args.side}x{args.side} "
          f"16-bit RGBA; server RSS idle {idle:,.0f} MiB")
    print_table(["calls", "clients", "label", "503 / busy", "other", "median s", "max s", "peak RSS MiB"], rows)


if __name__ == "__main__":
    main()
