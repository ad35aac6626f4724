"""What demo/web/patches.py relies on in uvicorn and Gradio is still there: an upgrade that moves
one of these internals fails here, naming the installed version, not silently in production."""
import asyncio
import inspect
import os
from pathlib import Path

import gradio as gr
import gradio.processing_utils
import gradio.queueing
import gradio.route_utils
import gradio.routes
import gradio.state_holder
import pytest
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from demo.web.patches import TimedH11Protocol, bound_sessions, check_event_inputs, write_pictures_once

UVICORN = f"uvicorn {uvicorn.__version__}"
GRADIO = f"gradio {gr.__version__}"


def h11_protocol() -> H11Protocol:
    config = Config(app=lambda scope, receive, send: None)
    config.load()
    return TimedH11Protocol(config=config, server_state=ServerState(), app_state={}, _loop=asyncio.new_event_loop())


class Transport(asyncio.Transport):
    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def is_closing(self) -> bool:
        return False


def test_uvicorn_h11_protocol_keeps_what_the_read_deadlines_use():
    protocol = h11_protocol()
    protocol.connection_made(Transport())  # uvicorn sets up its flow control here
    for name in ("conn", "flow", "loop", "client", "cycle"):
        assert hasattr(protocol, name), f"{UVICORN}: H11Protocol has no {name!r}; TimedH11Protocol reads it"
    for name in ("their_state", "our_state", "trailing_data"):
        assert hasattr(protocol.conn, name), f"{UVICORN}: H11Protocol.conn is no h11 connection (no {name})"
    assert hasattr(protocol.flow, "read_paused"), f"{UVICORN}: H11Protocol.flow has no read_paused"
    for hook in ("connection_made", "data_received", "connection_lost"):
        assert hook in vars(TimedH11Protocol) and hasattr(H11Protocol, hook), f"{UVICORN}: no {hook} to extend"


def test_gradio_checks_upload_paths_only_for_launched_blocks():
    source = inspect.getsource(gradio.processing_utils)
    assert "has_launched" in source, f"{GRADIO}: the upload-folder check no longer reads Blocks.has_launched"
    params = list(inspect.signature(gr.Blocks.preprocess_data).parameters)
    assert params[:3] == ["self", "block_fn", "inputs"], f"{GRADIO}: Blocks.preprocess_data takes {params}"
    assert inspect.iscoroutinefunction(gr.Blocks.preprocess_data), f"{GRADIO}: preprocess_data is not async"


def test_check_event_inputs_runs_before_gradio_and_can_refuse():
    seen = []
    with gr.Blocks() as blocks:
        gr.Textbox()

    def check(block_fn, inputs):
        seen.append(inputs)
        raise ValueError("refused")

    check_event_inputs(blocks, check)
    assert blocks.has_launched
    try:
        asyncio.run(blocks.preprocess_data(None, ["x"], None))
    except ValueError as e:
        assert str(e) == "refused"
    assert seen == [["x"]]


def test_a_components_own_refusal_is_a_message_not_a_traceback(caplog):
    """A number typed past a slider's end: Gradio refuses it while preprocessing, and would print a
    traceback for it unless the error says not to."""
    with gr.Blocks() as blocks:
        epoch = gr.Slider(1, 35, step=1)
        shown = gr.Textbox()
        epoch.change(lambda e: str(e), epoch, shown)
    check_event_inputs(blocks, lambda block_fn, inputs: None)
    with pytest.raises(gr.Error, match="Value 999 is greater than maximum value 35") as refused:
        asyncio.run(blocks.preprocess_data(blocks.fns[0], [999], None))
    assert refused.value.print_exception is False
    assert [r.getMessage() for r in caplog.records] == ["refused input: Value 999 is greater than maximum value 35."]


def test_gradio_reads_the_session_capacity_it_is_given():
    source = inspect.getsource(gradio.state_holder)
    assert "state_session_capacity" in source, f"{GRADIO}: the state store no longer reads state_session_capacity"
    with gr.Blocks() as blocks:
        gr.Textbox()
    bound_sessions(blocks, 7)
    assert blocks.state_session_capacity == 7


def test_gradio_writes_each_output_picture_once(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    params = list(inspect.signature(gradio.processing_utils.save_pil_to_cache).parameters)
    assert params == ["img", "cache_dir", "name", "format"], f"{GRADIO}: save_pil_to_cache takes {params}"
    for helper in ("encode_pil_to_bytes", "hash_bytes"):
        assert hasattr(gradio.processing_utils, helper), f"{GRADIO}: processing_utils has no {helper}"
    stock = gradio.processing_utils.save_pil_to_cache
    monkeypatch.setattr(gradio.processing_utils, "save_pil_to_cache", stock)  # undone after the test
    picture = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8))
    expected = stock(picture, str(tmp_path / "stock"))
    write_pictures_once()
    first = gradio.processing_utils.save_pil_to_cache(picture, str(tmp_path / "patched"))
    inode = os.stat(first).st_ino
    again = gradio.processing_utils.save_pil_to_cache(picture, str(tmp_path / "patched"))
    assert again == first and os.stat(again).st_ino == inode  # not rewritten
    assert Path(first).read_bytes() == Path(expected).read_bytes()
    assert Path(first).relative_to(tmp_path / "patched") == Path(expected).relative_to(tmp_path / "stock")


def test_gradio_finds_an_events_function_through_route_utils():
    params = list(inspect.signature(gradio.route_utils.get_fn).parameters)
    assert params == ["blocks", "api_name", "body"], f"{GRADIO}: route_utils.get_fn takes {params}"
    assert hasattr(gradio.route_utils, "FnIndexInferError"), f"{GRADIO}: route_utils has no FnIndexInferError"
    for module in (gradio.routes, gradio.queueing):
        assert "route_utils.get_fn(" in inspect.getsource(module), \
            f"{GRADIO}: {module.__name__} no longer calls route_utils.get_fn"
