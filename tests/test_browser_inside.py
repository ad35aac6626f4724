"""The "Look inside" panel in a real browser (Debian's Chromium via Playwright), one test per part:
every layer, what the first layer learned, why this answer, all models at once, where it fails."""
import pytest

# the browser, the server and the traced digits are test_browser.py's fixtures
from tests.test_browser import PHONE, browser, digits, draw, headline, headline_of, open_app, server  # noqa: F401


def open_inside(page):
    page.locator("#mnist-inside").get_by_text("Look inside").first.click()
    page.locator("#mnist-inside-message").get_by_text("says").wait_for()


@pytest.fixture(scope="module")
def inside(browser, server, digits):  # noqa: F811
    """One page: a drawn digit, the panel opened (the parts are read, never changed, by the tests but the last)."""
    page = open_app(browser, server)
    draw(page, digits[0])
    open_inside(page)
    yield page
    page.close()


def seen_picture(page, selector: str):
    """Wait until the picture in `selector` is loaded, scrolled to as a reader would (images load lazily)."""
    page.locator(selector).scroll_into_view_if_needed()
    picture = page.locator(f"{selector} img").first
    picture.wait_for()
    page.wait_for_function("([s]) => { const i = document.querySelector(s + ' img'); return i.complete && i.naturalWidth > 0; }",
                           arg=[selector])
    return picture


def captions(page, selector: str) -> list[str]:
    return [c.strip() for c in page.locator(f"{selector} .caption-label").all_inner_texts()]


def test_every_layer_in_order_with_its_shape_and_range(inside, digits):  # noqa: F811
    names = ["input", "conv1", "pool1", "ReLU1", "conv2", "pool2", "ReLU2", "fc1", "ReLU3", "fc2", "softmax"]
    shown = [c.strip() for c in inside.locator("#mnist-inside-layers figcaption").all_inner_texts()]
    assert [c.split(" ")[0] for c in shown] == names
    assert "10×24×24" in shown[1] and "range" in shown[1] and "20×4×4" in shown[6]
    assert f"says {digits[0].label} (" in inside.locator("#mnist-inside-message").inner_text()


def test_what_the_first_layer_learned(inside):
    seen_picture(inside, "#mnist-inside-weights")
    assert "first conv layer: 10 kernels 5×5" in inside.locator("#mnist-inside-weights-caption").inner_text()


def test_why_this_answer_occlusion_over_the_seen_picture(inside):
    seen_picture(inside, "#mnist-inside-occlusion")
    assert inside.locator("#mnist-inside-message").get_by_text("6×6 patch slid by 2 px").count() == 1


def test_all_models_at_once(inside):
    table = inside.locator("#mnist-inside-table")
    table.get_by_text("mnist-resnet-int8").wait_for()
    text = table.inner_text()
    for model_id in ("mnist-softmax", "mnist-mlp", "mnist-cnn", "mnist-lenet5", "mnist-resnet"):
        assert model_id in text and f"{model_id}-int8" in text


def test_where_it_fails_and_a_mistake_goes_through_the_inside_view(inside):
    gallery = "#mnist-inside-mistakes"
    inside.wait_for_function(f"() => document.querySelectorAll('{gallery} .caption-label').length === 32")
    first = captions(inside, gallery)[0]  # "#index: true → predicted (confidence)"
    predicted = first.split("→")[1].split("(")[0].strip()
    seen_picture(inside, "#mnist-inside-confusion")
    seen_picture(inside, gallery)
    inside.locator(f"{gallery} button").first.click()
    inside.locator("#mnist-inside-message").get_by_text(f"says {predicted}").wait_for()
    assert f"The mistake clicked, test image {first}." in inside.locator("#mnist-inside-message").inner_text()
    # the answer is at the panel's top, far above the gallery: the page brings it into view
    inside.wait_for_function("""() => {
        const r = document.querySelector('#mnist-inside-message').getBoundingClientRect();
        return r.top > -2 && r.top < window.innerHeight; }""")


def test_the_open_panel_follows_each_drawing_and_clear(browser, server, digits):  # noqa: F811
    from bench.pen import Pen

    page = open_app(browser, server)
    page.locator("#mnist-inside").get_by_text("Look inside").first.click()
    message = page.locator("#mnist-inside-message")
    message.get_by_text("Draw or upload").wait_for()
    for digit in digits[2:4]:  # drawn with the panel open: the view follows at pen-up
        page.locator("#mnist-sketch .pad-clear").click()
        message.get_by_text("Draw or upload").wait_for()  # Clear empties the view too
        Pen(page).draw(digit)
        # the panel reads the whole drawing at pen-up; the answer above it, for the same drawing, agrees
        page.wait_for_function(f"""() => {{ const label = {headline_of()};
            return label && document.querySelector('#mnist-inside-message').innerText.includes(`says ${{label}} (`); }}""")
    page.close()


def test_an_upload_removed_hands_the_panel_back_to_the_drawing(browser, server, digits):  # noqa: F811
    """Draw, take an example, open the panel, remove the example: the answer and the panel both go
    back to the drawing (the panel said "Draw or upload something")."""
    page = open_app(browser, server)
    draw(page, digits[0])
    drawn = headline(page)
    example = (int(drawn) + 1) % 10  # the gallery holds one test picture per class, in class order
    page.locator("#mnist-examples .thumbnail-item").nth(example).click()
    page.wait_for_function(f"() => {headline_of()} === '{example}'")
    open_inside(page)
    message = page.locator("#mnist-inside-message")
    message.get_by_text(f"says {example} (").wait_for()
    assert page.locator("#mnist-examples .thumbnail-item.selected").count() == 1
    page.locator("#mnist-upload").get_by_label("Remove Image").first.click()
    message.get_by_text(f"says {drawn} (").wait_for()
    assert headline(page) == drawn
    page.locator("#mnist-examples .thumbnail-item.selected").wait_for(state="detached")  # no example marked as shown
    page.close()


def test_the_panel_fits_a_phone(browser, server, digits):  # noqa: F811
    page = open_app(browser, server, PHONE)
    draw(page, digits[1], touch=True)
    open_inside(page)
    page.locator("#mnist-inside-layers figcaption").first.wait_for()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390 + 1  # nothing forces a sideways scroll
    page.locator("#mnist-inside-table td").first.wait_for()
    table = page.evaluate("() => { const t = document.querySelector('#mnist-inside-table .inside-table'); "
                          "return [t.scrollWidth, t.clientWidth]; }")
    assert table[0] <= table[1] + 1, table  # every model's answer in view, no scroll inside the table either
    page.close()


def test_fashion_looks_inside_an_uploaded_example(browser, server):  # noqa: F811
    page = open_app(browser, server)
    page.get_by_role("tab", name="Fashion").click()
    page.locator("#fashion-examples .thumbnail-item").nth(9).click()  # the ankle boot goes to the upload box
    page.locator("#fashion-info").get_by_text("provider").wait_for()
    label = headline(page, "#fashion-label")
    page.locator("#fashion-inside").get_by_text("Look inside").first.click()
    page.locator("#fashion-inside-message").get_by_text(f"says {label} (").wait_for()
    assert "fashion-cnn" in page.locator("#fashion-inside-message").inner_text()
    shown = [c.strip() for c in page.locator("#fashion-inside-layers figcaption").all_inner_texts()]
    assert [c.split(" ")[0] for c in shown][:3] == ["input", "conv1", "pool1"] and shown[-1].startswith("softmax")
    assert "10×24×24" in shown[1]
    seen_picture(page, "#fashion-inside-occlusion")
    gallery = "#fashion-inside-mistakes"
    page.wait_for_function(f"() => document.querySelectorAll('{gallery} .caption-label').length === 32")
    seen_picture(page, "#fashion-inside-confusion")
    seen_picture(page, gallery)
    mistake = captions(page, gallery)[0]  # "#index: true → predicted (confidence)", in the clothes' names
    true_label, predicted = (side.split("(")[0].split(":")[-1].strip() for side in mistake.split("→"))
    names = page.locator("#fashion-examples").inner_text()
    assert true_label != predicted and true_label in names and predicted in names, mistake
    assert "fashion-cnn gets" in page.locator("#fashion-inside-mistakes-caption").inner_text()
    page.close()
