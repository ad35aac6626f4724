"""The server: Gradio UI plus the JSON HTTP API on one port, torch-free.

    python -m demo                     # http://127.0.0.1:7860 (PORT env or --port)
    curl -s --data-binary @digit.png 'http://127.0.0.1:7860/api/classify?model=mnist-cnn'
    curl -s http://127.0.0.1:7860/api/models
"""
import argparse
import os
import sys

import gradio as gr
import uvicorn
from fastapi import FastAPI

from demo.api import build_api
from demo.manifest import MANIFEST_NAME, REBUILD_HINT
from demo.preprocess import MAX_BYTES
from demo.runtime import ModelError, ModelZoo
from demo.ui import PIXELATED, build_ui

SESSION_CAPACITY = 256


def create_app(zoo: ModelZoo) -> FastAPI:
    ui = build_ui(zoo)
    ui.queue(default_concurrency_limit=4, max_size=64)
    # Gradio keeps per-session state in memory for up to this many sessions (default 10,000);
    # every API caller is a session, and under load that was ~130 KB each
    ui.state_session_capacity = SESSION_CAPACITY
    # run_history off: the server would otherwise keep a record of every call (memory grew ~130 KB
    # per Gradio request under load); nobody here needs to replay runs
    return gr.mount_gradio_app(build_api(zoo), ui, path="/", max_file_size=MAX_BYTES, show_error=True,
                               footer_links=["api"], css=PIXELATED, run_history=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="bind address (env HOST)")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)), help="port (env PORT)")
    p.add_argument("--models-dir", default=None, help="folder with manifest.json and the .onnx files (env TINYZOO_MODELS)")
    p.add_argument("--provider", default=None, choices=["auto", "cpu", "cuda"], help="ONNX Runtime provider (env TINYZOO_PROVIDER)")
    return p


def load_zoo(models_dir, provider) -> ModelZoo:
    """Every model loaded (and verified) up front: fail now, not on a first request. No models is an error."""
    zoo = ModelZoo(models_dir, provider)
    if not zoo.ids():
        raise ModelError(f"{zoo.models_dir}: no models ({MANIFEST_NAME} missing or empty); {REBUILD_HINT}")
    for model_id in zoo.ids():
        zoo.get(model_id)
    return zoo


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        zoo = load_zoo(args.models_dir, args.provider)
    except ModelError as e:  # the operator's mistake: one line, no traceback
        print(f"tinyzoo demo: {e}", file=sys.stderr)
        return 2
    providers = sorted({zoo.get(i).provider for i in zoo.ids()})
    print(f"tinyzoo: {len(zoo.ids())} models from {zoo.models_dir} on {', '.join(providers)}; "
          f"serving http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(zoo), host=args.host, port=args.port, log_level="warning")
    return 0
