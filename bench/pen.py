"""Drawing traced digits in a real browser page, with the mouse or a finger, at a person's pace,
and reading when the page's answer changed. Shared by bench/drawing.py and tests/test_browser.py."""
import time
from dataclasses import dataclass

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.traced import TracedDigit

ANSWER = ["#mnist-label", "#mnist-info"]  # the label and the line under it change with every answer
SAME_ANSWER_MS = 30  # text changes this close together are one answer being rendered
PEN_SPEED = 1.2  # pad sides per second: a digit the size of the pad takes about a second to draw
PEN_STEP = 1 / 40  # pad sides between pointer events: ~60 events a second at PEN_SPEED, as a mouse sends

# A node's text as a person sees it: innerText counts Gradio's progress tracker, which stays in the
# node, transparent and 0 px tall, for events shown with show_progress="hidden", and whose timer
# ("queue: 1/1 | 0.1s", "1.9s") ticks every 100 ms while an event for the node is pending
SHOWN_TEXT = """(n) => n.innerText.replace(n.querySelector("[data-testid=status-tracker]")?.innerText || "\u0000", "")"""

# Timestamps (performance.now()) of every change of the answer's text, and of every pen-down and
# pen-up, kept in the page (mouse, touch or pointer: whichever the pad listens to, one is seen first)
WATCH = """([selectors]) => {
  window.__answers = []; window.__pen = [];
  const nodes = selectors.map((s) => document.querySelector(s));
  const visible = """ + SHOWN_TEXT + """;
  const answer = () => nodes.map(visible).join("|");
  let shown = answer();
  const note = () => {
    const text = answer();
    if (text !== shown) { shown = text; window.__answers.push(performance.now()); }
  };
  for (const node of nodes) new MutationObserver(note).observe(node,
      {subtree: true, childList: true, characterData: true});
  const pen = (down) => () => {
    const last = window.__pen[window.__pen.length - 1];
    if (!last || last[0] !== down) window.__pen.push([down, performance.now()]);
  };
  for (const type of ["pointerdown", "touchstart", "mousedown"]) document.addEventListener(type, pen(true), true);
  for (const type of ["pointerup", "touchend", "mouseup"]) document.addEventListener(type, pen(false), true);
}"""


def watch_answers(page) -> None:
    page.evaluate(WATCH, [ANSWER])


@dataclass
class Timeline:
    updates: list[float]  # when the answer's text on the page last changed, per answer shown (ms, page clock)
    strokes: list[tuple[float, float]]  # (pen-down, pen-up) times


def timeline(page, since: float = 0.0) -> Timeline:
    changes, pen = page.evaluate("[window.__answers, window.__pen]")
    downs = [t for down, t in pen if down and t >= since]
    ups = [t for down, t in pen if not down and t >= since]
    updates = []  # the label and the line under it render one answer in a few DOM steps: one update
    for t in (t for t in changes if t >= since):
        if updates and t - updates[-1] < SAME_ANSWER_MS:
            updates[-1] = t
        else:
            updates.append(t)
    return Timeline(updates, list(zip(downs, ups)))


def now(page) -> float:
    return page.evaluate("performance.now()")


def wait_until_quiet(page, quiet_ms: float, limit_s: float) -> None:
    """Until the answer has not changed for quiet_ms (or limit_s passed): the page has settled."""
    try:
        page.wait_for_function("""([quiet]) => {
            const last = Math.max(window.__answers[window.__answers.length - 1] || 0,
                                  (window.__pen[window.__pen.length - 1] || [0, 0])[1]);
        return performance.now() - last > quiet; }""", arg=[quiet_ms], timeout=limit_s * 1000, polling=50)
    except PlaywrightTimeout:  # still changing: the caller reads what is there
        pass


def spaced(points: list[tuple[float, float]], step: float) -> list[tuple[float, float]]:
    """Drop points closer than `step` to the last kept one (the stroke's end is always kept)."""
    kept = [points[0]]
    for x, y in points[1:]:
        if ((x - kept[-1][0]) ** 2 + (y - kept[-1][1]) ** 2) ** 0.5 >= step:
            kept.append((x, y))
    if len(points) > 1 and kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


class Pen:
    """Draws strokes given as fractions of the pad's side, by mouse or by touch (CDP touch events)."""

    def __init__(self, page, pad: str = "#mnist-sketch canvas", touch: bool = False):
        self.page, self.pad, self.touch = page, pad, touch
        self.cdp = page.context.new_cdp_session(page) if touch else None

    def _box(self):
        """The largest square centred on the pad: the drawing area of a square image on a wider canvas."""
        box = self.page.locator(self.pad).first.bounding_box()
        side = min(box["width"], box["height"])
        return box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2, side

    def _touch(self, kind: str, x: float, y: float) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    def _event(self, kind: str, x: float, y: float) -> None:
        if self.touch:
            self._touch({"down": "touchStart", "move": "touchMove", "up": "touchEnd"}[kind], x, y)
        elif kind == "down":
            self.page.mouse.move(x, y)
            self.page.mouse.down()
        elif kind == "move":
            self.page.mouse.move(x, y)
        else:
            self.page.mouse.up()

    def stroke(self, points: list[tuple[float, float]]) -> None:
        left, top, side = self._box()
        pixels = [(left + x * side, top + y * side) for x, y in spaced(points, PEN_STEP)]
        self._event("down", *pixels[0])
        start, travelled = time.perf_counter(), 0.0
        for (x0, y0), (x1, y1) in zip(pixels, pixels[1:]):
            travelled += ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
            pause = start + travelled / (PEN_SPEED * side) - time.perf_counter()  # keep a person's pace
            if pause > 0:
                time.sleep(pause)
            self._event("move", x1, y1)
        self._event("up", *pixels[-1])

    def draw(self, digit: TracedDigit) -> None:
        for stroke in digit.strokes:
            self.stroke(stroke)
