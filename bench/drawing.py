"""Drawing on the Digits pad in headless Chromium, as a person would, beside a baseline checkout.

Digits traced from real handwriting (MNIST test digits thinned to strokes, bench/traced.py), drawn
at 35-90% of the pad anywhere on it, at a person's pace, with the mouse (1280x1000) and with a
finger (390x844 touch). The page is read, not the server: accuracy is the label shown once the page
is quiet; the update interval is the gap between answers shown while the pen is down; settle is
the last mouse-up -> the last change of the answer on the page.

    python -m bench.drawing [--n 30] [--baseline <checkout>]   # e.g. a worktree of the code before the pad
"""
import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.app_latency import ROOT, start_server
from bench.pen import Pen, now, timeline, wait_until_quiet, watch_answers
from bench.report import print_table
from bench.traced import traced_digits
from training.data import load_split

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop 1280x1000, mouse": dict(viewport={"width": 1280, "height": 1000}),
             "phone 390x844, touch": dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                          device_scale_factor=3)}
QUIET_MS = 2500  # the answer is settled when it has not changed for this long (today's p90 is 1.5 s)


@dataclass
class Site:
    """How to draw on one version of the app: where its pad is, how to get an empty pad ready to draw."""
    name: str
    pad: str
    ready: str  # present once the pad takes strokes
    clear: list[str]  # buttons to click, in order, before each digit

    def prepare(self, page) -> None:
        for button in self.clear:
            page.locator(button).first.click()


OURS = Site("this branch", "#mnist-sketch canvas", "#mnist-sketch canvas[data-ready]", ["#mnist-sketch .pad-clear"])
# main: a gr.Sketchpad without an id, whose Clear also deselects the Brush (so it is clicked again)
GR_SKETCHPAD = Site("baseline", ".block canvas", ".block canvas",
                    ["button[aria-label='Clear canvas']", "button[aria-label='Brush']"])


@dataclass
class Drawn:
    right: bool
    settle_ms: float | None  # None: the page never answered after the last pen-up
    gaps_ms: list[float]  # between answers while the pen was down (and from pen-down to the first, the last to pen-up)


def headline(page) -> str:
    lines = [line.strip() for line in page.locator("#mnist-label").inner_text().splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else ""


def draw_one(page, site: Site, pen: Pen, digit) -> Drawn:
    site.prepare(page)
    wait_until_quiet(page, 300, 10)
    start = now(page)
    pen.draw(digit)
    wait_until_quiet(page, QUIET_MS, 15)
    line = timeline(page, start)
    last_up = line.strokes[-1][1]
    after = [t for t in line.updates if t >= last_up]
    gaps = []
    for down, up in line.strokes:
        gaps += list(np.diff([down, *(t for t in line.updates if down < t < up), up]))
    return Drawn(headline(page) == str(digit.label), after[-1] - last_up if after else None, gaps)


def run_site(browser, url: str, site: Site, viewport: str, digits) -> list[Drawn]:
    context = browser.new_context(**VIEWPORTS[viewport])
    page = context.new_page()
    page.goto(url)
    page.locator(site.ready).first.wait_for(timeout=60_000)
    watch_answers(page)
    pen = Pen(page, site.pad, touch="touch" in viewport)
    results = []
    for digit in digits:
        results.append(draw_one(page, site, pen, digit))
        print(f"{site.name}, {viewport}: {len(results)}/{len(digits)}", file=sys.stderr, flush=True)
    context.close()
    return results


def summary(site: Site, viewport: str, results: list[Drawn]) -> tuple:
    settles = [r.settle_ms for r in results if r.settle_ms is not None]
    gaps = [g for r in results for g in r.gaps_ms]
    pct = lambda xs, q: f"{np.percentile(xs, q):.0f}" if xs else "n/a"  # noqa: E731
    return (site.name, viewport, len(results), f"{np.mean([r.right for r in results]):.0%}", pct(gaps, 50), pct(gaps, 90),
            pct(settles, 50), pct(settles, 90), len(results) - len(settles))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=30, help="traced digits per viewport and version")
    p.add_argument("--seed", type=int, default=16, help="which test digits, sizes and positions")
    p.add_argument("--baseline", default="", help="a checkout of the code before (gr.Sketchpad) to compare against")
    p.add_argument("--baseline-n", type=int, default=10,
                   help="digits for the baseline (gr.Sketchpad takes ~0.5 s per pointer move in headless Chromium)")
    p.add_argument("--port", type=int, default=7810, help="this branch's server; the baseline's is port+1")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    images, labels = load_split("mnist", "test")
    digits = traced_digits(images, labels, args.n, seed=args.seed)
    sites = [(OURS, ROOT)] + ([(GR_SKETCHPAD, Path(args.baseline))] if args.baseline else [])
    servers = [start_server(root, args.port + i) for i, (_, root) in enumerate(sites)]
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for viewport in VIEWPORTS:
                for (site, _), (_, port) in zip(sites, servers):
                    some = digits if site is OURS else digits[:args.baseline_n]
                    rows.append(summary(site, viewport, run_site(browser, f"http://127.0.0.1:{port}", site, viewport,
                                                                 some)))
            browser.close()
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(10)
    print(f"\n{args.n} traced MNIST test digits (seed {args.seed}) at 35-90% of the pad, mnist-cnn, "
          f"headless Chromium, {os.cpu_count()} CPU cores")
    print_table(["version", "screen", "digits", "right", "update gap p50 ms", "p90 ms", "settle p50 ms", "p90 ms",
                 "no answer"], rows, text_columns=2)


if __name__ == "__main__":
    main()
