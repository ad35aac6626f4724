"""The Training tab: any shipped model's (or comparison run's) per-epoch curves, a second run
overlaid on the same charts, the learning rate, and the figures measured on the model's file."""
import gradio as gr

from demo.contract import ModelMetadata
from demo.contract.histories import read_histories
from demo.inference.runtime import ModelZoo
from demo.web.refusals import LOG
from demo.web.ui.common import guarded, pd_frame

NONE = "none"
METRICS = ("loss", "accuracy", "lr")
TITLES = {"loss": "loss per epoch", "accuracy": "accuracy per epoch", "lr": "learning rate per epoch"}
OVERLAID = " (overlaid)"
SPLITS = ("train", "val", "test", "lr")
SERIES = (*SPLITS, *(split + OVERLAID for split in SPLITS))
SERIES_COLOURS = dict(zip(SERIES, ("#2563eb", "#16a34a", "#f97316", "#2563eb",
                                   "#93c5fd", "#86efac", "#fdba74", "#93c5fd")))


def curve_frames(history: list[dict], overlaid: bool = False):
    """Per-epoch rows -> long tables (epoch, split, value) for loss, accuracy and the learning rate;
    an overlaid run's split names say so, so two runs share one chart."""
    frames = {m: {"epoch": [], "split": [], m: []} for m in METRICS}
    for row in history:
        for key, value in row.items():
            metric = next((m for m in frames if key == m or key.endswith(f"_{m}")), None)
            if metric and isinstance(value, (int, float)) and not isinstance(value, bool):
                frame = frames[metric]
                split = key.removesuffix(metric).rstrip("_") or ("lr" if metric == "lr" else "train")
                frame["epoch"].append(row["epoch"])
                frame["split"].append(split + OVERLAID if overlaid else split)  # hello logs plain 'loss'
                frame[metric].append(value)
    return tuple(pd_frame(frames[m]) for m in METRICS)


def curve_plot(frame, metric: str, runs: str = "", **layout) -> gr.LinePlot:
    """A curve chart whose colour scale always holds every series name (SERIES), those this frame
    lacks as one empty point each; its legend names only the series drawn. Gradio's chart keeps the
    series names it was first drawn with: a name new data brought (a second run's) was not drawn."""
    import pandas as pd  # a Gradio dependency

    present = list(dict.fromkeys(frame["split"]))
    missing = [name for name in SERIES if name not in present]
    padding = pd.DataFrame({"epoch": [1] * len(missing), "split": missing, metric: [float("nan")] * len(missing)})
    return gr.LinePlot(pd.concat([frame, padding], ignore_index=True), x="epoch", y=metric, color="split",
                       color_map=SERIES_COLOURS, colors_in_legend=present, label=f"{TITLES[metric]}{runs}",
                       color_title="run" if metric == "lr" else "split",  # a rate is no train/val/test split
                       visible=bool(len(frame)), **layout)


def comparable(runs: dict, first: str) -> list[str]:
    """The runs that may be drawn over `first`: another run with a per-epoch log, on the same data
    with the same kind of output (a Fashion CNN's curves are no yardstick for a char RNN's). A
    run with no log of its own has none: its charts would show only the other run's."""
    if not runs[first]["history"]:
        return []
    kind = runs[first]["kind"]
    return [run for run, entry in runs.items() if run != first and entry["history"] and entry["kind"] == kind]


def overlaid(runs: dict, first: str, second: str) -> bool:
    """Whether `second` is a run to draw over `first`."""
    return second in comparable(runs, first)


def runs_named(frame, first: str, second: str) -> str:
    """A chart title's runs: both when both are drawn in it; a run that logged nothing of this chart's
    kind (the char RNN, no accuracy) is named as such, not as overlaid."""
    overlaid_rows = [str(split).endswith(OVERLAID) for split in frame["split"]]
    first_drawn, second_drawn = not all(overlaid_rows), any(overlaid_rows)
    if first_drawn and second_drawn:
        return f": {first}, and {second} overlaid"
    if first_drawn:
        return f": {first} ({second} logged none)"
    return f": {second} ({first} logged none)" if second_drawn else ""


def format_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.2g} ms"


def accuracy_row(meta: ModelMetadata) -> str:
    measured = meta.measurements
    if measured.test_accuracy is None:
        return "n/a"
    if meta.task == "sequence-prediction":  # the course's one example: nothing held out
        return (f"{measured.test_accuracy:.0%} of the {measured.test_examples} positions of its training string "
                "(no held-out set: the course trains and checks on the one example)")
    return f"{measured.test_accuracy:.2%} of {measured.test_examples} test examples"


def training_summary(meta: ModelMetadata) -> str:
    """The numbers behind a shipped file: how it was trained and what it measured, as a table."""
    train, measured = meta.train, meta.measurements
    cfg = train.config  # the trainer's config as recorded: its keys are the recipe's knobs
    recipe_keys = ("optimizer", "lr", "batch_size", "scheduler", "weight_decay", "l1", "label_smoothing", "augment",
                   "val_size", "patience", "amp", "seed")
    recipe = ", ".join(f"{k} {cfg[k]}" for k in recipe_keys if k in cfg)
    variant = meta.variant
    parity = (f"max abs diff {max(measured.parity.max_abs_diff.values()):.1e}, "
              f"argmax agreement {measured.parity.argmax_agreement:.2%}")
    rows = [
        ("test accuracy (this ONNX file)", accuracy_row(meta)),
        ("int8 variant of", f"{variant.variant_of} ({variant.fp32_test_accuracy:.2%} in fp32; "
                            f"{variant.quantization.method} quantization)") if variant else None,
        ("parameters", f"{measured.params:,}"),
        ("model args", ", ".join(f"{k} {v}" for k, v in meta.provenance.model_args.items()) or "none"),
        ("epochs", f"{train.epochs}" + (f" (weights of epoch {train.selected_epoch}, best on validation)"
                                        if cfg.get("val_size") and train.selected_epoch else "")),
        # the figure recorded while the shipped file was trained: the one the README's model table quotes
        ("time per epoch", f"{format_seconds(train.seconds_per_epoch)} on {train.device} (recorded while training)"),
        ("recipe", recipe or "see the lesson"),
        # an int8 file carries its fp32 source's parity: quantizing moves the logits on purpose
        (f"parity with PyTorch (of fp32 {variant.variant_of})", f"{parity}; the int8 file is gated on its accuracy")
        if variant else ("parity with PyTorch", parity),
        ("checkpoint sha256", f"`{meta.provenance.checkpoint_sha256[:16]}…`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in filter(None, rows))
    return f"### {meta.id}\n| measure | value |\n|---|---|\n{table}"


def lesson_history(meta: ModelMetadata) -> list[dict]:
    """A lesson trained in one full-batch run: its recorded gradient-descent steps as per-epoch loss."""
    gd = meta.measurements.results.get("gd")
    return [{"epoch": e, "loss": loss} for e, _, _, loss in gd["path"]] if isinstance(gd, dict) else []


def training_runs(zoo: ModelZoo) -> dict[str, dict]:
    """Every shipped model (lessons too) and every comparison run -> {history, summary}."""
    runs = {}
    for model_id in zoo.ids():
        meta = zoo.get(model_id).meta
        history = list(meta.train.history) if meta.train and meta.train.history else lesson_history(meta)
        note = "" if history else "\n\nTrained in one run with no per-epoch log: nothing to plot."
        runs[model_id] = {"history": history, "summary": training_summary(meta) + note,
                          "kind": (meta.dataset, meta.output)}
    try:
        histories = read_histories(zoo.models_dir)
    except ValueError as e:  # a broken history file costs that comparison, not the tab
        LOG.warning("comparison runs not shown: %s", e)
        histories = []
    for run in histories:
        runs[run.id] = {"history": list(run.history), "kind": runs.get(run.config.get("model"), {}).get("kind"),
                        "summary": (
            f"### {run.id}\n{run.title}. A comparison run: only its history is shipped, no model file.\n\n"
            f"Made with `{run.command}` on {run.recorded.get('machine', '?')}, {run.recorded.get('date', '?')} "
            f"(commit {run.recorded.get('commit', '?')}).")}
    return runs


def overlay(runs: dict, first: str, second: str):
    """-> (loss, accuracy, lr) frames of one run, or of two on the same axes."""
    if not overlaid(runs, first, second):
        return curve_frames(runs[first]["history"])
    import pandas as pd  # a Gradio dependency

    pairs = zip(curve_frames(runs[first]["history"]), curve_frames(runs[second]["history"], overlaid=True))
    return tuple(pd.concat([a, b], ignore_index=True) for a, b in pairs)


def training_tab(zoo: ModelZoo):
    runs = training_runs(zoo)
    if not runs:
        gr.Markdown(f"No models in `{zoo.models_dir}`: run `make models`.")
        return

    @guarded
    def show(first: str, second: str):
        """-> loss, accuracy, learning-rate plots (each hidden when nothing to show), the table."""
        if first not in runs:
            raise gr.Error(f"no run {str(first)[:40]!r}: pick one from the list", print_exception=False)
        frames, two = overlay(runs, first, second), overlaid(runs, first, second)
        return (*(curve_plot(frame, metric, runs_named(frame, first, second) if two else "")
                  for frame, metric in zip(frames, METRICS)), runs[first]["summary"])

    def overlay_choices(first: str, second: str) -> gr.Dropdown:
        """The overlay list for a newly picked run: its comparable runs; the overlay kept if it is one."""
        choices = comparable(runs, first) if first in runs else []
        return gr.Dropdown([NONE, *choices], value=second if second in choices else NONE, interactive=bool(choices))

    first = "fashion-cnn" if "fashion-cnn" in runs else next(iter(runs))
    with gr.Row():
        choice = gr.Dropdown(list(runs), value=first, label="run", elem_id="training-run", min_width=200)
        # custom values allowed: the list is this page's run's comparable runs, and an API caller's run is
        # checked by show() against its own first run, not against the list the page started with
        other = gr.Dropdown([NONE, *comparable(runs, first)], value=NONE, label="overlay a second run (same data)",
                            elem_id="training-other", min_width=200, allow_custom_value=True)
    loss, accuracy, lr = overlay(runs, first, NONE)
    with gr.Row():
        loss_plot = curve_plot(loss, "loss", elem_id="training-loss", min_width=300)
        accuracy_plot = curve_plot(accuracy, "accuracy", elem_id="training-accuracy", min_width=300)
    lr_plot = curve_plot(lr, "lr", elem_id="training-lr")
    table = gr.Markdown(runs[first]["summary"], elem_id="training-table")
    outputs = [loss_plot, accuracy_plot, lr_plot, table]
    # each pick answered twice: a chart whose title and legend change is redrawn from the data it held
    # before (Gradio 6's plot), so the second, identical answer is what puts the new runs' curves in it
    for picked, name in ((choice, "training_curves"), (other, False)):
        answered = picked.change(show, [choice, other], outputs, api_name=name)
        answered.then(show, [choice, other], outputs, api_name=False)
    choice.change(overlay_choices, [choice, other], other, api_name=False)
