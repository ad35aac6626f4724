"""Pen-up -> the "Look inside" view on screen, in headless Chromium (issue 25), per model.

The Digits tab with its Look inside panel open; traced MNIST digits (bench/traced.py) drawn with the
mouse at a person's pace (bench/pen.py), as bench/drawing.py does. The page is read, not the server:
"inside view" is the last pen-up -> the last change of the panel (its layers, occlusion picture,
table and message rewritten, every picture in it loaded) once the page is quiet; "answer" is the
same for the label above it. "agrees" counts drawings whose panel names the label's answer.

    python -m bench.inside_drawing [--n 20] [--models mnist-cnn mnist-resnet] [--baseline <checkout>]
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

from bench.app_latency import ROOT, start_server
from bench.drawing import CHROMIUM, CHROMIUM_ARGS, VIEWPORTS, headline
from bench.pen import Pen, now, timeline, watch_answers
from bench.report import print_table
from bench.traced import traced_digits
from training.data import load_split

TARGETS_MS = {"mnist-cnn": 300, "mnist-resnet": 600}  # the p50 goals
QUIET_MS = 2000  # settled: neither the answer nor the panel changed for this long
PANEL = "#mnist-inside"

# Timestamps of every change in the panel's view (DOM rewritten or a picture finished loading)
WATCH_PANEL = """([selectors]) => {
  window.__inside = [];
  const note = () => window.__inside.push(performance.now());
  for (const selector of selectors) {
    const node = document.querySelector(selector);
    new MutationObserver(note).observe(node, {subtree: true, childList: true, characterData: true,
                                              attributes: true, attributeFilter: ["src"]});
    node.addEventListener("load", note, true);  // <img> loads do not bubble: caught on the way down
  }
}"""
VIEW = [f"{PANEL}-layers", f"{PANEL}-occlusion", f"{PANEL}-table", f"{PANEL}-message"]
QUIET = """([quiet]) => {
  const last = Math.max(window.__answers.at(-1) || 0, window.__inside.at(-1) || 0, (window.__pen.at(-1) || [0, 0])[1]);
  return performance.now() - last > quiet; }"""


def open_panel(page, model_id: str) -> None:
    page.locator("#mnist-sketch canvas[data-ready]").wait_for(timeout=60_000)
    if model_id != "mnist-cnn":
        page.get_by_label("model").first.click()
        page.get_by_role("option", name=model_id, exact=True).click()
    page.locator(PANEL).get_by_text("Look inside").first.click()
    page.locator(f"{PANEL}-message").get_by_text("Draw or upload").wait_for(timeout=60_000)


def settle(page) -> None:
    page.wait_for_function(QUIET, arg=[QUIET_MS], timeout=30_000, polling=50)


def draw_one(page, pen: Pen, digit) -> tuple[float | None, float | None, bool]:
    """-> (pen-up -> answer ms, pen-up -> inside view ms, whether the panel names the label's answer)."""
    page.locator("#mnist-sketch .pad-clear").click()
    settle(page)
    start = now(page)
    pen.draw(digit)
    settle(page)
    line = timeline(page, start)
    last_up = line.strokes[-1][1]
    panel = [t for t in page.evaluate("window.__inside") if t >= last_up]
    answers = [t for t in line.updates if t >= last_up]
    label = headline(page)
    agrees = bool(label) and f"says {label} (" in page.locator(f"{PANEL}-message").inner_text()
    return (answers[-1] - last_up if answers else None), (panel[-1] - last_up if panel else None), agrees


def run_model(browser, url: str, model_id: str, digits) -> list:
    context = browser.new_context(**VIEWPORTS["desktop 1280x1000, mouse"])
    page = context.new_page()
    page.goto(url)
    open_panel(page, model_id)
    watch_answers(page)
    page.evaluate(WATCH_PANEL, [VIEW])
    pen = Pen(page)
    answer, inside, agrees = [], [], []
    for i, digit in enumerate(digits):
        a, v, same = draw_one(page, pen, digit)
        answer += [a] if a is not None else []
        inside += [v] if v is not None else []
        agrees.append(same)
        print(f"{model_id}: {i + 1}/{len(digits)} inside {v}", file=sys.stderr, flush=True)
    context.close()
    pct = lambda xs, q: f"{np.percentile(xs, q):.0f}" if xs else "n/a"  # noqa: E731
    return [model_id, len(digits), pct(inside, 50), pct(inside, 90), f"<= {TARGETS_MS.get(model_id, '')}",
            pct(answer, 50), pct(answer, 90), f"{np.mean(agrees):.0%}", len(digits) - len(inside)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20, help="traced digits per model")
    p.add_argument("--seed", type=int, default=16, help="which test digits, sizes and positions")
    p.add_argument("--models", nargs="+", default=list(TARGETS_MS))
    p.add_argument("--baseline", default="", help="a checkout of the code before, measured the same way")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    digits = traced_digits(*load_split("mnist", "test"), args.n, seed=args.seed)
    versions = [("this branch", ROOT)] + ([(f"baseline {args.baseline}", Path(args.baseline))] if args.baseline else [])
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for version, root in versions:
            proc, port = start_server(root)
            try:
                rows += [[version, *run_model(browser, f"http://127.0.0.1:{port}", m, digits)] for m in args.models]
            finally:
                proc.terminate()
                proc.wait(10)
        browser.close()
    print(f"\n{args.n} traced MNIST test digits (seed {args.seed}), Digits tab with Look inside open, desktop "
          f"1280x1000, mouse, headless Chromium, {os.cpu_count()} CPU cores")
    print_table(["version", "model", "digits", "inside view p50 ms", "p90 ms", "goal p50", "answer p50 ms", "p90 ms",
                 "panel agrees", "no view"], rows, text_columns=2)


if __name__ == "__main__":
    main()
