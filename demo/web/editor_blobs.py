"""Bounds on the drawings Gradio's Sketchpad / ImageEditor keeps in memory.

The browser sends a drawing's layers as blobs to the editor's `accept_blobs` server function,
which keeps them in a dict by drawing id until that drawing is classified. Nothing bounded it:
`index` grows the layer list to any length (index=10**7 kept 78 MB per request; 10**9 asks for
8 GB), a request without a file is a 500, and every new id stays in memory for good. Here a
drawing has at most MAX_LAYERS layers and each editor keeps the newest MAX_DRAWINGS drawings.
"""
import functools

import gradio as gr
from fastapi import HTTPException

MAX_LAYERS = 16
MAX_DRAWINGS = 32  # drawings sent but not yet classified, across all sessions, per editor
BLOB_TYPES = ("layer", "background", "composite")


def checked_blob(data) -> None:
    """400 for a blob the browser would never send: unknown type, no file, a layer index past MAX_LAYERS."""
    fields = data.data if isinstance(data.data, dict) else {}
    index = str(fields.get("index"))
    if fields.get("type") not in BLOB_TYPES or not data.files or not fields.get("id"):
        raise HTTPException(400, "a drawing blob needs a type (layer, background or composite), an id and a file")
    if fields["type"] == "layer" and index not in ("None", "null") and not (index.isdigit() and int(index) < MAX_LAYERS):
        raise HTTPException(400, f"a drawing has at most {MAX_LAYERS} layers")


def bound_editor_blobs(blocks: gr.Blocks) -> None:
    """Wrap the accept_blobs of every editor in these Blocks with the bounds."""
    for block in blocks.blocks.values():
        if isinstance(block, gr.ImageEditor):
            block.accept_blobs = bounded(block, block.accept_blobs)


def bounded(editor: gr.ImageEditor, accept_blobs):
    @functools.wraps(accept_blobs)  # keeps the signature Gradio reads to pass the request's data
    def accept_bounded_blobs(data):
        checked_blob(data)
        result = accept_blobs(data)
        while len(editor.blob_storage) > MAX_DRAWINGS:  # oldest first: dicts keep insertion order
            editor.blob_storage.pop(next(iter(editor.blob_storage)))
        return result

    accept_bounded_blobs._is_server_fn = True  # what Gradio's component_server route requires
    return accept_bounded_blobs
