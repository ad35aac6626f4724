"""The Hello tab: the course's char RNN, per-position predictions and probabilities, and what it
predicted after each epoch of training."""
import math

import gradio as gr

from demo.inference.runtime import InputError, ModelError, ModelZoo, SequencePrediction
from demo.web.refusals import refused
from demo.web.ui.common import ClampingSlider


TABLE_HEADERS = ("#", "in", "out")  # short, so a phone shows every vocabulary column


def probability_table(pred: SequencePrediction) -> list[list]:
    """One row per position: input char, predicted char, then P(next = c) for each vocab char, each
    with two decimals (as numbers, 0.70 showed as "0.7" and 0.996 as "1")."""
    return [[i + 1, pred.text[i], pred.predicted[i], *[f"{float(p):.2f}" for p in row]]
            for i, row in enumerate(pred.probabilities)]


def probability_ceiling(meta) -> str:
    """Why a model without an output layer never gets sure: nn.RNN's output is its hidden state, a
    tanh in [-1, 1], so the softmax over V characters peaks at e / (e + (V - 1) / e)."""
    if meta.provenance.model_args.get("head", True):
        return ""
    v = len(meta.sequence.idx_to_char)
    ceiling = math.e / (math.e + (v - 1) / math.e)
    return (f" · its probabilities top out near {ceiling:.2f}: this model has no output layer, its outputs are "
            f"the RNN's tanh hidden state (each in [-1, 1]), and softmax over {v} characters of such scores "
            f"can't exceed e / (e + {v - 1}/e) = {ceiling:.3f}. The argmax is still right.")


def epoch_view(zoo: ModelZoo, model_id: str, epoch: int) -> str:
    """What the model predicted for the training string after `epoch` epochs (from its history)."""
    history = {row["epoch"]: row for row in zoo.get(model_id).meta.train.history if "predicted" in row}
    row = history.get(int(epoch))
    if row is None:
        return f"`{model_id}` recorded no prediction for epoch {int(epoch)}"
    pair = zoo.get(model_id).meta.sequence.trained_pair
    right = sum(a == b for a, b in zip(row["predicted"], pair["target_text"]))
    return (f"after epoch **{row['epoch']}** of {len(history)}: `{pair['input_text']}` → **`{row['predicted']}`** "
            f"({right} of {len(pair['target_text'])} positions right, loss {row['loss']:.3f})")


def epoch_slider(zoo: ModelZoo, model, first: str):
    """A slider over the training history: the prediction after each epoch ("heeee" … "ohlol")."""
    epochs = len(zoo.get(first).meta.train.history)
    slider = ClampingSlider(1, epochs, value=1, step=1, label="training epoch: the prediction after it",
                            elem_id="hello-epoch")
    shown = gr.Markdown(epoch_view(zoo, first, 1), elem_id="hello-epoch-out")
    slider.change(lambda m, e: epoch_view(zoo, m, e), [model, slider], [shown], api_name=False,
                  show_progress="hidden", trigger_mode="always_last")

    def new_model(model_id: str):
        last = len(zoo.get(model_id).meta.train.history)
        return gr.Slider(1, last, value=1, step=1), epoch_view(zoo, model_id, 1)

    model.change(new_model, [model], [slider, shown], api_name=False, show_progress="hidden")


def hello_tab(zoo: ModelZoo):
    ids = zoo.ids("sequence-prediction")
    if not ids:
        gr.Markdown(f"No sequence models in `{zoo.models_dir}`: run `make models`.")
        return

    def predict(model_id: str, text: str):
        """-> (predicted text, table, info); a refused input clears the old result and says why."""
        try:
            model = zoo.get(model_id)
            pred = model.predict(text)
        except (InputError, ModelError) as e:
            vocab = zoo.get(model_id).vocab if model_id in ids else []
            empty = {"headers": [*TABLE_HEADERS, *vocab], "data": []}
            return "", empty, f"**Can't predict:** {refused(e)}"
        table = {"headers": [*TABLE_HEADERS, *pred.vocab], "data": probability_table(pred)}
        info = (f"model `{pred.model}` · provider `{pred.provider}` · {pred.latency_ms:.2f} ms"
                + probability_ceiling(zoo.get(model_id).meta))
        return pred.predicted, table, info

    first = "hello-rnn" if "hello-rnn" in ids else ids[0]  # the lecture's own model
    shown = predict(first, "hello")  # the page opens with the lecture's example answered
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(ids, value=first, label="model")
            vocab = ", ".join(repr(c) for c in zoo.get(first).vocab)
            text = gr.Textbox(value="hello", label=f"text over the model's vocabulary ({vocab}); Enter predicts")
            button = gr.Button("predict", variant="primary")
        with gr.Column():
            predicted = gr.Textbox(shown[0], label="the output, one character per position", interactive=False,
                                   elem_id="hello-predicted")
            table = gr.Dataframe(shown[1], label="per position: the character in, the one out, each character's probability", interactive=False, elem_id="hello-table")
            info = gr.Markdown(shown[2], elem_id="hello-info")
    epoch_slider(zoo, model, first)
    outputs = [predicted, table, info]
    button.click(predict, [model, text], outputs, api_name="predict_hello")
    text.submit(predict, [model, text], outputs, api_name=False)
    model.change(predict, [model, text], outputs, api_name=False)
