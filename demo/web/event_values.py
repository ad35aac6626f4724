"""What a caller may send as each input of a Gradio event, checked before Gradio preprocesses it.

The page's own controls send only these; a crafted call to the API (`/gradio_api/call/...`,
`/gradio_api/queue/join`) could send anything, and NaN, null, a list where a model's name goes or
an input left out reached Gradio's preprocessing or a handler and came back as a Python exception's
text ("'NoneType' object is not subscriptable", a pydantic error, a component's repr), with a
traceback in the log. Here each is refused naming the input and what it needs.
"""
import math

import gradio as gr

from demo.web.refusals import refused

NAMED = (gr.Dropdown, gr.Textbox)  # one string: a model's id, a text


def checked_values(block_fn, inputs: list) -> None:
    """Raises gr.Error (one log line) for the first input a page could not have sent."""
    components = [c for c in block_fn.inputs if not isinstance(c, gr.State)]
    sent = [v for c, v in zip(block_fn.inputs, inputs) if not isinstance(c, gr.State)]
    if len(inputs) != len(block_fn.inputs):
        names = ", ".join(input_name(c) for c in components)
        refuse(f"this call takes {len(block_fn.inputs)} inputs ({names}), got {len(inputs)}")
    for component, value in zip(components, sent):
        problem = value_problem(component, value)
        if problem:
            refuse(f"input \"{input_name(component)}\": {problem}")


def value_problem(component, value) -> str:
    """-> why `value` can't be this component's input, or "" when it can."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(component, gr.Slider) and not (is_number and not math.isnan(value)):
        return f"a number is needed, got {described(value)}"
    if isinstance(component, gr.Number) and value is not None and not is_number:
        return f"a number (or nothing) is needed, got {described(value)}"
    if isinstance(component, NAMED) and not getattr(component, "multiselect", False) and not isinstance(value, str):
        return f"text is needed, got {described(value)}"
    if isinstance(component, gr.Image) and value is not None and not isinstance(value, dict):
        return f"a picture is needed (an upload's file data), got {described(value)}"
    return ""


def input_name(component) -> str:
    return str(component.label or component.elem_id or type(component).__name__.lower())[:60]


def described(value) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, (dict, list)):
        return "a JSON object" if isinstance(value, dict) else "a JSON list"
    return repr(value)[:40]


def refuse(message: str) -> None:
    raise gr.Error(refused(message), print_exception=False)
