"""The page: one tab per kind of model (Digits, Fashion, Hello, Lessons, Training), its CSS and
the script that tells the pad the app can take events."""
import gradio as gr

from demo.inference.runtime import ModelZoo
from demo.web.ui.common import STATIC
from demo.web.ui.hello import hello_tab
from demo.web.ui.images import image_tab
from demo.web.ui.lessons import lessons_tab
from demo.web.ui.training import training_tab


def app_css() -> str:
    """The page's own styles (static/app.css): the pad, the answer beside the seen picture, phones."""
    return (STATIC / "app.css").read_text()


# Gradio runs this page script once the app can take events (mount_gradio_app's js=). A component's
# trigger() before then is dropped without a word (its dispatcher is not wired yet): on a busy
# machine a digit drawn right after the page appeared got no answer. The pad waits for this.
APP_READY_JS = """() => {
  window.tinyzooReady = true;
  document.dispatchEvent(new Event('tinyzoo:ready'));
  // a slider's number box shows what the app uses as soon as Enter is pressed: Gradio's box showed a
  // number past the slider's end (99 of 35) until it lost focus, while the app answered for the end
  document.addEventListener('keydown', (event) => {
    const box = event.target;
    if (event.key !== 'Enter' || !box.matches || !box.matches('input[type=number][min][max]')) return;
    const value = Number(box.value), low = Number(box.min), high = Number(box.max);
    if (box.value === '' || !Number.isFinite(value) || (value >= low && value <= high)) return;
    box.value = String(Math.min(Math.max(value, low), high));
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }, true);
}"""


def build_ui(zoo: ModelZoo) -> gr.Blocks:
    # uploads and outputs in Gradio's cache are deleted after an hour, checked hourly
    with gr.Blocks(title="tinyzoo", delete_cache=(3600, 3600)) as ui:
        gr.Markdown("# tinyzoo\nA deep-learning course's models, trained in PyTorch and served here by ONNX Runtime. "
                    "New here? The <a href=\"/readme\" target=\"_blank\" rel=\"noopener\">README</a> (opens in a new tab) "
                    "explains each model and the HTTP API.",
                    elem_classes=["intro"], elem_id="header")
        with gr.Tab("Digits"):
            image_tab(zoo, "mnist", "a handwritten digit", sketch=True, empty_message="draw a digit",
                      intro="Draw a digit (0–9) on the pad: the model answers as you draw. Beside the answer: your "
                            "drawing as the model gets it, cropped and scaled to 28×28 like its MNIST training digits.")
        with gr.Tab("Fashion"):
            image_tab(zoo, "fashion", "a clothing picture", sketch=False, empty_message="upload a clothing picture",
                      intro="Upload a photo of one piece of clothing on a plain background, or click an example: "
                            "the model names which of the 10 Fashion-MNIST classes it looks like, from a 28×28 grey "
                            "copy (shown beside the answer).")
        with gr.Tab("Hello"):
            gr.Markdown("The course's char RNN learned one mapping, position by position: `hello` → `ohlol` (h→o, "
                        "e→h, l→l, l→o, o→l). It is not guessing the next letter of a word: each output is what it "
                        "learned to put at that position, given the characters so far. Try other strings over its "
                        "vocabulary.", elem_classes=["intro"])
            hello_tab(zoo)
        with gr.Tab("Lessons"):
            lessons_tab(zoo)
        with gr.Tab("Training"):
            gr.Markdown("How each shipped model was trained: its per-epoch curves (from the checkpoint, carried "
                        "in the ONNX metadata) and the figures measured on the exported file.")
            training_tab(zoo)
    return ui
