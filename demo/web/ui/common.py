"""What every tab shares: refusing a user's input in plain words, guarded handlers, table frames."""
import functools
import logging
from pathlib import Path

import gradio as gr

from demo.inference.runtime import InputError, ModelError

STATIC = Path(__file__).resolve().parents[1] / "static"  # the pad's script and the page's CSS
LOG = logging.getLogger("tinyzoo.ui")  # no handler: Python prints a warning as one plain line on stderr


class Click(gr.EventData):
    """A select event as the browser sends it, {"index": ..., "value": ...}. A hand-made request may
    send any JSON there, and gr.SelectData fails on a missing key (a KeyError and a traceback)
    before the handler runs; Gradio builds any EventData subclass named as a type hint."""

    def __init__(self, target, data):
        super().__init__(target, data)
        self.index = data.get("index") if isinstance(data, dict) else None


def refused(error: Exception) -> str:
    """A user's input was refused: one line in the server log (no traceback), the message for the page."""
    LOG.warning("refused input: %s", error)
    return str(error)


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
