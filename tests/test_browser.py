"""A real browser: Debian's Chromium, headless, driven by Playwright (no browser download).

Each test does what a newcomer would (draw, clear, upload, switch model, type a wrong value) and
reads the page. Digits are drawn from seeded traces of real MNIST test digits (bench/traced.py),
at 35-90% of the pad, anywhere on it. Waits are for conditions on the page, never fixed sleeps.
"""
import io
import re
import shutil

import pytest
from PIL import Image

from demo.web.ui.training import SERIES_COLOURS
from tests.conftest import drawn_digit_png, require_dataset, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# no background networking: this machine's closed network refuses those connections
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DESKTOP = dict(viewport={"width": 1280, "height": 1000})
PHONE = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with its log in a file, so tests can read what an error writes there -> (URL, log path)."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with open(log_path, "w") as log, running_server(log) as (url, _):
        yield url, log_path


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (part of .[dev])")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (`make test` installs it when run as root)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


_contexts: dict = {}  # (browser, screen) -> its browser context


def open_app(browser, server, screen=DESKTOP):
    """A new page of the app. The pages of one screen share a browser context, as a person's tabs share
    a profile: the app's scripts come from its cache (a page is ready ~0.7 s sooner, of ~3 s)."""
    key = (browser, repr(sorted(screen.items())))
    if key not in _contexts:
        _contexts[key] = browser.new_context(**screen)
    page = _contexts[key].new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server[0])
    page.locator("#mnist-sketch canvas[data-ready]").wait_for()  # its script has attached the pen's listeners
    return page


@pytest.fixture
def page(browser, server):
    page = open_app(browser, server)
    yield page
    page.close()


@pytest.fixture(scope="module")
def digits(test_split):
    from bench.traced import traced_digits

    require_dataset("mnist")
    return traced_digits(*test_split("mnist"), 12, seed=1616)


def shown(selector: str) -> str:
    """JS: the text of `selector` as a person sees it, without Gradio's hidden progress timer
    (bench/pen.py's SHOWN_TEXT, imported here: bench/pen.py needs Playwright, which the browser
    fixture may skip for)."""
    from bench.pen import SHOWN_TEXT

    return f"({SHOWN_TEXT})(document.querySelector('{selector}'))"


def headline_of(selector: str = "#mnist-label") -> str:
    """JS: the answer a Label shows (its caption 'top 3' comes first), or undefined."""
    return shown(selector) + ".split('\\n').map((s) => s.trim()).filter(Boolean)[1]"


def headline(page, selector: str = "#mnist-label") -> str:
    return page.evaluate(f"() => {headline_of(selector)} || ''")


def wait_headline(page, label: str):
    page.wait_for_function(f"([label]) => {headline_of()} === label", arg=[label])


def draw(page, digit, touch=False):
    """Draw a traced digit, then wait until the page shows the answer for the whole drawing."""
    from bench.pen import Pen

    answers = page.evaluate(f"() => {shown('#mnist-info')}")
    Pen(page, touch=touch).draw(digit)
    page.wait_for_function(f"([before]) => {shown('#mnist-info')} !== before", arg=[answers])
    wait_settled(page)


def wait_settled(page, quiet_ms=800):
    """Until the answer line, as shown, has not changed for quiet_ms (a condition, not a sleep).
    A line that never settles fails with its last changes (page clock ms, text)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"""([quiet]) => {{
            const text = {shown('#mnist-info')};
            if (window.__seen !== text) {{
                window.__seen = text; window.__since = performance.now();
                window.__trail = [...(window.__trail || []).slice(-11), [Math.round(window.__since), text]];
            }}
            return performance.now() - window.__since > quiet; }}""", arg=[quiet_ms], polling=100)
    except PlaywrightTimeout:
        trail = page.evaluate("() => [performance.now(), window.__trail]")
        raise AssertionError(f"the answer line never stayed {quiet_ms} ms: at {trail[0]:.0f} ms, "
                             f"its last changes were {trail[1]}") from None


def upload(page, tmp_path, data: bytes, selector="#mnist-upload"):
    path = tmp_path / "upload.png"
    path.write_bytes(data)
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))


# --- drawing ---------------------------------------------------------------------------------

def test_draw_at_once_and_again_after_clear(page, digits):
    draw(page, digits[0])  # no tool to pick first
    assert headline(page) == str(digits[0].label)
    page.locator("#mnist-sketch .pad-clear").click()
    page.locator("#mnist-info").get_by_text("draw a digit").wait_for()
    assert headline(page) == ""
    draw(page, digits[1])  # Clear left the pad ready
    assert headline(page) == str(digits[1].label)


def test_traced_digits_read_right(page, digits):
    right = []
    for digit in digits[2:12]:
        page.locator("#mnist-sketch .pad-clear").click()
        page.locator("#mnist-info").get_by_text("draw a digit").wait_for()
        draw(page, digit)
        right.append(headline(page) == str(digit.label))
    assert sum(right) >= 9, [(d.label, d.size) for d, ok in zip(digits[2:12], right) if not ok]


def test_answer_shows_while_the_pen_is_still_down(page, digits):
    from bench.pen import PEN_STEP, Pen, spaced

    pen = Pen(page)
    left, top, side = pen._box()
    stroke = max(digits[3].strokes, key=len)
    points = [(left + x * side, top + y * side) for x, y in spaced(stroke, PEN_STEP)]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y)
        if "provider" in page.locator("#mnist-info").inner_text():
            break
    page.locator("#mnist-info").get_by_text("provider").wait_for()  # an answer before the pen is lifted
    page.mouse.up()


def test_changing_the_model_answers_again(page, digits):
    draw(page, digits[4])
    assert "mnist-cnn" in page.locator("#mnist-info").inner_text()
    page.get_by_label("model (test accuracy)").first.click()
    page.get_by_role("option", name=re.compile(r"^mnist-mlp · \d")).click()
    page.locator("#mnist-info").get_by_text("mnist-mlp").wait_for()  # the same drawing, answered by the new model
    assert headline(page) in list("0123456789")


def test_removing_the_upload_shows_the_drawings_answer(page, digits, tmp_path):
    digit = next(d for d in digits if d.label != 7)
    draw(page, digit)
    upload(page, tmp_path, drawn_digit_png(size=320))
    wait_headline(page, "7")  # the upload's answer
    page.locator("#mnist-upload").get_by_label("Remove Image").first.click()
    wait_headline(page, str(digit.label))  # the drawing's answer again
    assert "draw a digit" not in page.locator("#mnist-info").inner_text()


def test_blank_upload_says_blank(page, tmp_path):
    white = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(white, format="PNG")
    upload(page, tmp_path, white.getvalue())
    page.locator("#mnist-info").get_by_text("blank").wait_for()
    assert "draw a digit" not in page.locator("#mnist-info").inner_text()


def wait_picture(page, selector: str, side: int = 80):
    """Until the picture has loaded and is shown at least side x side px (not a strip): the answer's
    text can render a moment before its picture does."""
    page.wait_for_function("""([sel, side]) => { const img = document.querySelector(sel);
        if (!img || !img.complete) return false;
        const box = img.getBoundingClientRect(); return box.width >= side && box.height >= side; }""", arg=[selector, side])


def assert_caption_clear(page, block: str, shown: str):
    """The block's floating caption ends above what it shows (it used to cover the top rows)."""
    caption = page.locator(f"{block} > label").bounding_box()
    top = min(box["y"] for box in (e.bounding_box() for e in page.locator(f"{block} {shown}").all()))
    assert caption["y"] + caption["height"] <= top + 1, (block, caption, top)


def test_seen_picture_is_a_picture_not_a_strip(page, digits):
    draw(page, digits[5])
    wait_picture(page, "#mnist-seen img")
    assert_caption_clear(page, "#mnist-seen", "img")
    page.get_by_role("tab", name="Fashion").click()
    page.locator("#fashion-examples img").first.click()
    page.locator("#fashion-info").get_by_text("for test-set example #19 ").wait_for()  # an example, not an upload
    for shown in ("#fashion-seen img", "#fashion-upload img"):
        wait_picture(page, shown)
    assert_caption_clear(page, "#fashion-seen", "img")


@pytest.mark.parametrize("screen", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_examples_gallery_shows_all_ten_without_empty_space(browser, server, screen):
    page = open_app(browser, server, screen)
    try:
        block = page.locator("#mnist-examples").bounding_box()
        thumbs = [t.bounding_box() for t in page.locator("#mnist-examples .thumbnail-item").all()]
        assert len(thumbs) == 10
        for t in thumbs:  # every one inside the block: none scrolled out of sight sideways
            assert block["x"] <= t["x"] and t["x"] + t["width"] <= block["x"] + block["width"] + 1, (t, block)
        assert block["y"] + block["height"] - max(t["y"] + t["height"] for t in thumbs) <= 40, (block, thumbs[-1])
        assert_caption_clear(page, "#mnist-examples", ".thumbnail-item")
    finally:
        page.close()


def test_phone_draws_and_shows_answer_and_seen_without_scrolling(browser, server, digits):
    page = open_app(browser, server, PHONE)
    try:
        draw(page, digits[6], touch=True)
        assert headline(page) == str(digits[6].label)
        assert page.evaluate("window.scrollY") == 0
        for shown in ("#mnist-sketch canvas", "#mnist-label", "#mnist-seen img"):
            box = page.locator(shown).bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 844, (shown, box)
    finally:
        page.close()


# --- the rest of the app ---------------------------------------------------------------------

def test_newcomer_finds_explanations_captions_and_the_readme(page):
    assert "Draw a digit" in page.inner_text("body")
    readme = page.get_by_role("link", name="README")
    assert readme.get_attribute("target") == "_blank"  # a new tab: the drawing stays where it is
    shown = page.request.get(server_url(page) + readme.get_attribute("href"))
    assert shown.headers["content-type"].startswith("text/html") and '<h1 id="tinyzoo">tinyzoo</h1>' in shown.text()
    page.get_by_role("tab", name="Fashion").click()
    assert "Upload a photo of one piece of clothing" in page.inner_text("body")
    captions = page.locator("#fashion-examples").inner_text()
    assert all(name in captions for name in ("T-shirt/top", "Trouser", "Ankle boot")), captions


def server_url(page) -> str:
    return re.match(r"https?://[^/]+", page.url).group(0)


def open_tab(page, *names):
    for name in names:
        tab = page.get_by_role("tab", name=name)
        if tab.count() == 0:  # a narrow screen folds tabs into a "More tabs" menu of plain buttons
            page.get_by_role("button", name="More tabs").click()
            tab = page.get_by_role("button", name=name, exact=True)
        tab.click()


def test_hello_error_clears_the_old_result(page):
    open_tab(page, "Hello")
    assert page.locator("#hello-predicted textarea, #hello-predicted input").first.input_value() == "ohlol"
    assert "out" in page.locator("#hello-table").inner_text()  # real headers, not 1 2 3
    box = page.get_by_label(re.compile("text over the model's vocabulary"))
    box.fill("xyz")
    box.press("Enter")
    page.locator("#hello-info").get_by_text("Can't predict").wait_for()
    assert "allowed characters" in page.locator("#hello-info").inner_text()
    assert page.locator("#hello-predicted textarea, #hello-predicted input").first.input_value() == ""
    assert page.locator("#hello-table tbody tr").count() <= 1  # no old rows
    box.fill("hello" * 60)  # 300 characters: refused with the limit named, not cut to 256
    box.press("Enter")
    page.locator("#hello-info").get_by_text("300 characters").wait_for()


def test_phone_hello_table_fits_the_screen(browser, server):
    """Every column of the per-position table is on a 390 px screen, and the page never scrolls sideways."""
    page = open_app(browser, server, PHONE)
    try:
        open_tab(page, "Hello")
        page.locator("#hello-table thead th").last.wait_for()
        last = page.locator("#hello-table thead th").last.bounding_box()
        assert last["x"] + last["width"] <= 390, last
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        page.close()


def test_linear_answers_at_once_rounded_and_on_enter(page):
    open_tab(page, "Lessons", "Linear")
    assert page.locator("#linear-y input").input_value() == "8"
    x = page.locator("#linear-x input")
    x.fill("5")
    x.press("Enter")
    page.wait_for_function("() => document.querySelector('#linear-y input').value === '10'")


def marker_columns(page, selector: str) -> list[int]:
    """The picture's columns holding the marker's red, in the picture's own pixels."""
    import numpy as np

    src = page.locator(f"{selector} img").get_attribute("src")
    data = page.request.get(src if src.startswith("http") else server_url(page) + src).body()
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    return sorted(set(np.flatnonzero(red.sum(0) > 100).tolist()))  # a full-height line, not the legend's swatch


def test_logistic_marker_follows_x_and_shows_at_low_p(page):
    open_tab(page, "Lessons", "Logistic")
    assert "P(y=1 | x=2.5)" in page.locator("#logistic-out").inner_text()
    first = marker_columns(page, "#logistic-plot")
    assert first, "no marker at x = 2.5"
    for value in ("7", "0.5"):  # the second change used to lose the marker; P(y=1 | 0.5) is ~0
        x = page.locator("#logistic-x input[type=number]")
        x.fill(value)
        x.press("Enter")
        page.locator("#logistic-out").get_by_text(f"x={value}").wait_for()
        page.locator("#logistic-plot").get_by_text(f"marked at x = {value}").wait_for()
        page.wait_for_function("([v]) => document.querySelector('#logistic-plot img').complete", arg=[value])
        columns = marker_columns(page, "#logistic-plot")
        assert columns and columns != first, (value, columns)
        first = columns


def test_diabetes_starts_valid_and_names_the_bad_field(page):
    open_tab(page, "Lessons", "Diabetes")
    out = page.locator("#diabetes-out")
    assert "P(diabetes)" in out.inner_text()  # a typical patient, answered
    assert page.locator("input[aria-invalid=true], .validation-error, .error").count() == 0
    glucose = page.get_by_label(re.compile("^glu:"))
    glucose.fill("0")
    page.get_by_role("button", name="predict").last.click()
    out.get_by_text("Check the form").wait_for()
    assert "glu" in out.inner_text() and "P(diabetes)" not in out.inner_text()


def test_spiral_shows_both_models_side_by_side_and_a_click_moves_both(page):
    open_tab(page, "Lessons", "Spiral")
    for model_id in ("spiral-linear", "spiral-mlp"):
        wait_picture(page, f"#{model_id}-board img")
    linear, mlp = (page.locator(f"#{m}-board img").bounding_box() for m in ("spiral-linear", "spiral-mlp"))
    assert linear["x"] + linear["width"] <= mlp["x"] and abs(linear["y"] - mlp["y"]) < 2  # next to each other
    before = [page.locator(f"#{m}-board img").get_attribute("src") for m in ("spiral-linear", "spiral-mlp")]
    page.locator("#spiral-linear-board img").click(position={"x": linear["width"] * 0.3, "y": linear["height"] * 0.6})
    page.wait_for_function("""([a, b]) => document.querySelector('#spiral-linear-board img').src !== a
        && document.querySelector('#spiral-mlp-board img').src !== b""", arg=before)
    assert "(0.5, 0.2)" not in page.locator("#spiral-out").inner_text()  # the clicked point, by both models
    page.locator("#spiral-x input").fill("-0.3")
    page.locator("#spiral-x input").press("Enter")  # Enter answers, as in the other lessons' boxes
    page.locator("#spiral-out").get_by_text("(-0.3, ").wait_for()


def pick(page, elem_id: str, option: str):
    """Choose from a long dropdown by typing its name (the list filters to it)."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def test_training_tab_for_a_model_without_accuracy(page):
    open_tab(page, "Training")
    assert page.locator("#training-accuracy").is_visible()
    assert page.locator("#training-table th").first.inner_text().strip() == "measure"
    pick(page, "training-run", "hello-rnn")
    page.locator("#training-table").get_by_text("hello-rnn").wait_for()
    page.locator("#training-accuracy").wait_for(state="hidden")
    table = page.locator("#training-table").inner_text()
    assert "positions of its training string" in table and "test examples" not in table  # not a test set
    assert "0.0 s" not in table and "ms on cpu" in table


def test_phone_training_table_breaks_between_words(browser, server):
    page = open_app(browser, server, PHONE)
    try:
        open_tab(page, "Training")
        cell = page.locator("#training-table td").first
        cell.wait_for()
        assert cell.evaluate("c => getComputedStyle(c).wordBreak") not in ("break-all", "break-word")
        assert cell.evaluate("c => getComputedStyle(c).overflowWrap") != "anywhere"
    finally:
        page.close()


def test_input_errors_are_one_log_line_not_a_traceback(page, server, tmp_path):
    upload(page, tmp_path, b"\x89PNG\r\n\x1a\n but then nothing an image would hold")
    page.locator("#mnist-info").get_by_text("not an image", exact=False).wait_for()
    open_tab(page, "Hello")
    box = page.get_by_label(re.compile("text over the model's vocabulary"))
    box.fill("xyz")
    box.press("Enter")
    page.locator("#hello-info").get_by_text("Can't predict").wait_for()
    log = server[1].read_text()
    assert "Traceback" not in log, log[-3000:]
    assert re.search(r"refused input: .*not an image", log) and re.search(r"refused input: .*'x'", log), log[-3000:]


# --- issue 26: the open defects and the lessons that move ----------------------------------------

def png_bytes(array) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(out, format="PNG")
    return out.getvalue()


def test_hello_says_what_it_learned_and_why_rnn_tops_out(page):
    open_tab(page, "Hello")
    assert "position by position" in page.inner_text("body") and "predicts the next" not in page.inner_text("body")
    info = page.locator("#hello-info").inner_text()
    assert "top out near 0.71" in info and "tanh" in info


def test_hello_epoch_slider_shows_the_prediction_at_that_epoch(page):
    open_tab(page, "Hello")
    out = page.locator("#hello-epoch-out")
    assert "epoch 1 of 35" in out.inner_text() and "heeee" in out.inner_text()
    box = page.locator("#hello-epoch input[type=number]")
    box.fill("35")
    box.press("Enter")
    out.get_by_text("epoch 35 of 35").wait_for()
    assert "ohlol" in out.inner_text() and "5 of 5 positions right" in out.inner_text()
    box.fill("1")
    box.press("Enter")
    out.get_by_text("epoch 1 of 35").wait_for()
    box.fill("999")  # past the end reads as the end, not an error toast per keystroke
    box.press("Enter")
    out.get_by_text("epoch 35 of 35").wait_for()
    assert box.input_value() == "35"  # the box shows the end at once (Gradio's own only once it lost focus)
    box.fill("0")
    box.press("Enter")
    out.get_by_text("epoch 1 of 35").wait_for()
    assert box.input_value() == "1"
    assert page.locator(".toast-wrap .toast-body, [data-testid='toast-body']").count() == 0


def test_training_lists_every_model_and_overlays_two_runs(page, zoo):
    open_tab(page, "Training")
    page.locator("#training-run input").click()
    options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
    assert set(zoo.ids()) <= set(options), sorted(set(zoo.ids()) - set(options))  # lessons included
    page.locator("#training-table").click()  # closes the list
    pick(page, "training-run", "linear-regression")
    page.locator("#training-table").get_by_text("linear-regression").wait_for()
    page.locator("#training-loss").wait_for(state="visible")  # its recorded gradient-descent steps
    pick(page, "training-run", "fashion-cnn")
    page.locator("#training-table").get_by_text("fashion-cnn").wait_for()
    assert page.locator("#training-lr").is_visible()  # the schedule, plotted
    pick(page, "training-other", "fashion-mlp")  # the overlay's frames are checked in test_app
    page.wait_for_function(OVERLAID_CURVE_DRAWN, timeout=30_000)  # its curves drawn, not empty axes
    pick(page, "training-run", "spiral-mlp")  # no per-epoch log: no overlay stays, and no chart is left showing
    page.wait_for_function("document.querySelector('#training-other input').value === 'none'")
    page.locator("#training-loss").wait_for(state="hidden")
    assert page.locator(".toast-body").count() == 0


# a line in the overlaid run's training colour, with points in it
OVERLAID_CURVE_DRAWN = f"""() => Array.from(document.querySelectorAll('#training-loss svg path')).some(p =>
    p.getAttribute('stroke') === '{SERIES_COLOURS["train (overlaid)"]}' && (p.getAttribute('d') || '').length > 50)"""


def test_training_table_frame_is_as_wide_as_its_table(page):
    open_tab(page, "Training")
    table = page.locator("#training-table table")
    table.wait_for()
    frame = table.bounding_box()["width"]
    rows = table.locator("tr").first.bounding_box()["width"]
    assert frame <= rows + 2, (frame, rows)


@pytest.mark.parametrize("screen", [PHONE], ids=["phone"])
def test_phone_shows_every_tab_lesson_and_the_spiral_legend(browser, server, screen):
    page = open_app(browser, server, screen)
    try:
        for name in ("Digits", "Fashion", "Hello", "Lessons", "Training"):
            assert page.get_by_role("tab", name=name).is_visible(), name
        page.get_by_role("tab", name="Lessons").click()
        for name in ("Linear", "Logistic", "Diabetes", "Spiral"):
            assert page.get_by_role("tab", name=name, exact=True).is_visible(), name
        page.get_by_role("tab", name="Spiral").click()
        for board in ("#spiral-linear-board", "#spiral-mlp-board"):
            wait_picture(page, f"{board} img")
            assert_caption_clear(page, board, "img")  # the legend at the picture's top is not covered
    finally:
        page.close()


def test_drawing_after_an_upload_takes_the_upload_away(page, digits, tmp_path):
    upload(page, tmp_path, drawn_digit_png(size=320))
    page.locator("#mnist-info").get_by_text("for the uploaded picture").wait_for()
    page.locator("#mnist-found img").wait_for()
    draw(page, digits[7])
    page.locator("#mnist-info").get_by_text("for your drawing").wait_for()
    page.locator("#mnist-found").wait_for(state="hidden")
    page.wait_for_function("() => !document.querySelector('#mnist-upload img')")
    assert headline(page) == str(digits[7].label)


def test_shaded_blank_photo_is_not_called_flat_and_fashion_box_is_the_garment(page, tmp_path):
    import numpy as np

    shaded = np.tile(np.linspace(90, 230, 300).astype(np.uint8), (240, 1))
    upload(page, tmp_path, png_bytes(shaded))
    page.locator("#mnist-info").get_by_text("Nothing to classify").wait_for()
    assert "flat colour" not in page.locator("#mnist-info").inner_text()
    page.get_by_role("tab", name="Fashion").click()
    shirt = np.full((300, 300), 240, np.uint8)
    shirt[60:250, 80:220] = 40
    upload(page, tmp_path, png_bytes(shirt), "#fashion-upload")
    page.locator("#fashion-found").get_by_text("where the garment was found").wait_for()
    assert "ink" not in page.locator("#fashion-found").inner_text()


def test_diabetes_answers_on_enter_and_a_correction_clears_the_error(page):
    open_tab(page, "Lessons", "Diabetes")
    out = page.locator("#diabetes-out")
    glucose = page.get_by_label(re.compile("^glu:"))
    glucose.fill("0")
    glucose.press("Enter")  # Enter answers (it did nothing)
    out.get_by_text("Check the form").wait_for()
    glucose.fill("130")
    glucose.press("Enter")
    out.get_by_text("P(diabetes)").wait_for()
    assert "Check the form" not in out.inner_text()


def test_linear_cleared_x_clears_the_answer_without_a_toast(page):
    open_tab(page, "Lessons", "Linear")
    x = page.locator("#linear-x input")
    x.fill("")
    x.press("Enter")
    page.locator("#linear-message").get_by_text("Type a number for x").wait_for()
    assert page.locator("#linear-y input").input_value() == ""
    page.get_by_role("tab", name="Digits").click()
    assert page.locator(".toast-wrap .toast-body, [data-testid='toast-body']").count() == 0


def test_digits_open_with_equal_answer_boxes_and_labelled_models(page):
    label, seen = (page.locator(s).bounding_box() for s in ("#mnist-label", "#mnist-seen"))
    assert abs(label["height"] - seen["height"]) <= 2, (label, seen)
    page.locator("#mnist-model input").click()
    options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
    assert all(re.match(r"^mnist-\w+(-int8)? · \d+\.\d\d%", o) for o in options), options
    int8 = [i for i, o in enumerate(options) if "-int8" in o]
    assert int8 and min(int8) > max(i for i, o in enumerate(options) if "-int8" not in o)  # twins after


def stepper_printout(page, name: str) -> str:
    return page.locator(f"#{name}-printout").inner_text()


def test_linear_stepper_steps_like_pytorch_and_diverges_at_a_large_rate(page, zoo):
    from demo.inference import lessons as gd

    lesson = gd.GDLesson.from_results(zoo.get("linear-regression").meta.measurements.results)
    open_tab(page, "Lessons", "Linear")
    page.locator("#linear-step").click()
    page.locator("#linear-status").get_by_text("epoch 1 at").wait_for()
    _, w, b, _ = lesson.recorded[1]
    assert f"w = {w: .6f}" in stepper_printout(page, "linear") and "PyTorch at epoch 1" in stepper_printout(page, "linear")
    rate = page.locator("#linear-lr input[type=number]")
    rate.fill("0.2")
    rate.press("Enter")
    page.locator("#linear-steps").get_by_text("10", exact=True).click()
    for _ in range(3):
        page.locator("#linear-step").click()
    page.locator("#linear-status").get_by_text("diverging").wait_for()
    page.locator("#linear-steps").get_by_text("100", exact=True).click()
    page.locator("#linear-play").click()  # until the loss overflows: then playing stops by itself
    page.locator("#linear-status").get_by_text("diverged: the loss overflowed — press reset").wait_for()
    page.wait_for_function("() => document.querySelector('#linear-play').innerText.trim() === 'play'")
    page.locator("#linear-reset").click()
    page.locator("#linear-status").get_by_text("epoch 0 at").wait_for()
    rate.fill(f"{lesson.lr:g}")  # the shipped rate converges: playing stops there too, not thousands of epochs on
    rate.press("Enter")
    page.locator("#linear-play").click()
    page.locator("#linear-status").get_by_text("converged: the loss no longer moves").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelector('#linear-play').innerText.trim() === 'play'")
    page.locator("#linear-reset").click()
    page.locator("#linear-status").get_by_text("epoch 0 at").wait_for()


def test_logistic_stepper_plays_and_pauses(page):
    open_tab(page, "Lessons", "Logistic")
    page.locator("#logistic-play").click()
    page.wait_for_function("() => /epoch [3-9]\\d* at|epoch \\d{2,} at/.test(document.querySelector('#logistic-status').innerText)")
    page.get_by_role("button", name="pause").click()
    page.get_by_role("button", name="play").wait_for()
    after = page.locator("#logistic-status").inner_text()
    page.locator("#logistic-step").click()  # paused: only the click moves it
    page.wait_for_function("([before]) => document.querySelector('#logistic-status').innerText !== before", arg=[after])
    assert "converging" in page.locator("#logistic-status").inner_text()


def test_shift_and_scale_shows_every_model_on_the_moved_drawing(page, digits):
    draw(page, digits[8])
    page.locator("#mnist-shift").get_by_text("shift and scale").click()
    page.wait_for_function("() => document.querySelector('#shift-table')?.innerText.includes('mnist-resnet')")
    dx = page.locator("#shift-dx input[type=number]")
    dx.fill("6")
    dx.press("Enter")
    page.wait_for_function("""() => ['mnist-softmax', 'mnist-mlp', 'mnist-cnn', 'mnist-lenet5', 'mnist-resnet']
        .every((m) => document.querySelector('#shift-table').innerText.includes(m))""")
    wait_picture(page, "#shift-seen img")
