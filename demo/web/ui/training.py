"""The Training tab: each shipped model's per-epoch curves and the figures measured on its file."""
import gradio as gr

from demo.contract import ModelMetadata
from demo.inference.runtime import ModelZoo
from demo.web.ui.common import guarded, pd_frame


def curve_frames(history: list[dict]):
    """Per-epoch rows -> long tables (epoch, split, loss) and (epoch, split, accuracy) for gr.LinePlot."""
    frames = {"loss": {"epoch": [], "split": [], "loss": []}, "accuracy": {"epoch": [], "split": [], "accuracy": []}}
    for row in history:
        for key, value in row.items():
            metric = next((m for m in frames if key == m or key.endswith(f"_{m}")), None)
            if metric and isinstance(value, (int, float)):
                frame = frames[metric]
                frame["epoch"].append(row["epoch"])
                frame["split"].append(key.removesuffix(metric).rstrip("_") or "train")  # hello logs plain 'loss'
                frame[metric].append(value)
    return pd_frame(frames["loss"]), pd_frame(frames["accuracy"])


def training_summary(meta: ModelMetadata) -> str:
    """The numbers behind a shipped file: how it was trained and what it measured, as a table."""
    train, measured = meta.train, meta.measurements
    cfg = train.config  # the trainer's config as recorded: its keys are the recipe's knobs
    recipe_keys = ("optimizer", "lr", "batch_size", "scheduler", "weight_decay", "l1", "label_smoothing", "augment",
                   "val_size", "patience", "amp", "seed")
    recipe = ", ".join(f"{k} {cfg[k]}" for k in recipe_keys if k in cfg)
    variant = meta.variant
    rows = [
        ("test accuracy (this ONNX file)", "n/a" if measured.test_accuracy is None else
         f"{measured.test_accuracy:.2%} of {measured.test_examples} test examples"),
        ("int8 variant of", f"{variant.variant_of} ({variant.fp32_test_accuracy:.2%} in fp32; "
                            f"{variant.quantization.method} quantization)") if variant else None,
        ("parameters", f"{measured.params:,}"),
        ("model args", ", ".join(f"{k} {v}" for k, v in meta.provenance.model_args.items()) or "none"),
        ("epochs", f"{train.epochs}" + (f" (weights of epoch {train.selected_epoch}, best on validation)"
                                        if cfg.get("val_size") and train.selected_epoch else "")),
        # the figure recorded while the shipped file was trained: the one the README's model table quotes
        ("seconds per epoch", f"{train.seconds_per_epoch:.1f} on {train.device} (recorded while training)"),
        ("recipe", recipe or "see the lesson"),
        ("parity with PyTorch", f"max abs diff {max(measured.parity.max_abs_diff.values()):.1e}, argmax agreement "
                                f"{measured.parity.argmax_agreement:.2%}"),
        ("checkpoint sha256", f"`{meta.provenance.checkpoint_sha256[:16]}…`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in filter(None, rows))
    return f"### {meta.id}\n| measure | value |\n|---|---|\n{table}"


def training_tab(zoo: ModelZoo):
    ids = [i for i in zoo.ids() if zoo.get(i).meta.train and zoo.get(i).meta.train.history]
    if not ids:
        gr.Markdown(f"No training histories in `{zoo.models_dir}`: run `make models`.")
        return

    def curves(model_id: str):
        meta = zoo.get(model_id).meta
        return (*curve_frames(list(meta.train.history)), training_summary(meta))

    @guarded
    def show(model_id: str):
        """-> loss plot, accuracy plot (hidden for models that log no accuracy: hello-*), table."""
        loss, accuracy, summary = curves(model_id)
        return loss, gr.LinePlot(accuracy, visible=not accuracy.empty), summary

    first = "mnist-cnn" if "mnist-cnn" in ids else ids[0]
    loss, accuracy, summary = curves(first)
    choice = gr.Dropdown(ids, value=first, label="model")
    with gr.Row():
        loss_plot = gr.LinePlot(loss, x="epoch", y="loss", color="split", label="loss per epoch")
        accuracy_plot = gr.LinePlot(accuracy, x="epoch", y="accuracy", color="split", label="accuracy per epoch",
                                    visible=not accuracy.empty, elem_id="training-accuracy")
    table = gr.Markdown(summary, elem_id="training-table")
    choice.change(show, [choice], [loss_plot, accuracy_plot, table], api_name="training_curves")
