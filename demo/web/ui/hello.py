"""The Hello tab: the course's char RNN, per-position predictions and probabilities."""
import gradio as gr

from demo.inference.runtime import InputError, ModelError, ModelZoo, SequencePrediction
from demo.web.ui.common import refused


def probability_table(pred: SequencePrediction) -> list[list]:
    """One row per position: input char, predicted char, then P(next = c) for each vocab char."""
    return [[i + 1, pred.text[i], pred.predicted[i], *[round(float(p), 4) for p in row]]
            for i, row in enumerate(pred.probabilities)]


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
            empty = {"headers": ["#", "input", "predicted", *vocab], "data": []}
            return "", empty, f"**Can't predict:** {refused(e)}"
        table = {"headers": ["#", "input", "predicted", *pred.vocab], "data": probability_table(pred)}
        info = f"model `{pred.model}` · provider `{pred.provider}` · {pred.latency_ms:.2f} ms"
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
            predicted = gr.Textbox(shown[0], label="predicted next characters", interactive=False,
                                   elem_id="hello-predicted")
            table = gr.Dataframe(shown[1], label="per-position probabilities", interactive=False, elem_id="hello-table")
            info = gr.Markdown(shown[2], elem_id="hello-info")
    outputs = [predicted, table, info]
    button.click(predict, [model, text], outputs, api_name="predict_hello")
    text.submit(predict, [model, text], outputs, api_name=False)
    model.change(predict, [model, text], outputs, api_name=False)
