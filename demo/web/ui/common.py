"""What every tab shares: guarded handlers (a refused input is a message), table frames."""
import functools
import math
from pathlib import Path

import gradio as gr

from demo.inference.runtime import InputError, ModelError
from demo.web.refusals import refused

STATIC = Path(__file__).resolve().parents[1] / "static"  # the pad's script and the page's CSS


class Click(gr.EventData):
    """A select event as the browser sends it, {"index": ..., "value": ...}. A hand-made request may
    send any JSON there, and gr.SelectData fails on a missing key (a KeyError and a traceback)
    before the handler runs; Gradio builds any EventData subclass named as a type hint."""

    def __init__(self, target, data):
        super().__init__(target, data)
        self.index = data.get("index") if isinstance(data, dict) else None


class ClampingSlider(gr.Slider):
    """gr.Slider whose number typed past an end reads as that end. Gradio's own box clamps it only
    when it loses focus; until then every keystroke past the end raised "Value 999 is greater than
    maximum value 35" as an error toast. A value that is no number at all is still refused."""

    is_template = True  # render with gr.Slider's front end

    def preprocess(self, payload: float) -> float:
        if isinstance(payload, (int, float)) and math.isfinite(payload):
            payload = min(max(payload, self.minimum), self.maximum)
        return super().preprocess(payload)


def guarded(fn):
    """A handler whose bad input or broken model shows as a Gradio error message, not a traceback."""
    @functools.wraps(fn)  # Gradio reads the handler's signature
    def call(*args):
        try:
            return fn(*args)
        except (InputError, ModelError) as e:
            raise gr.Error(refused(e), print_exception=False) from None
    return call


def pd_frame(columns: dict):
    import pandas as pd  # a Gradio dependency

    return pd.DataFrame(columns)
