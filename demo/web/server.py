"""The server: Gradio UI plus the JSON HTTP API on one port, torch-free.

    python -m demo                     # http://127.0.0.1:7860 (PORT env or --port)
    curl -s --data-binary @digit.png 'http://127.0.0.1:7860/api/classify?model=mnist-cnn'
    curl -s http://127.0.0.1:7860/api/models
"""
import argparse
import socket
import sys

import gradio as gr
import uvicorn
from fastapi import FastAPI

from demo.settings import (HOST, KEEP_ALIVE_S, MAX_BYTES, MAX_HEAD_BYTES, PORT, SESSION_CAPACITY, SHUTDOWN_GRACE_S,
                           UPLOAD_CACHE_MB)
from demo.web import connections
from demo.web.api import answer_unknown_routes, build_api
from demo.contract.manifest import MANIFEST_NAME, REBUILD_HINT
from demo.imaging.budget import tune_malloc
from demo.inference.backend import add_backend_arguments, open_zoo
from demo.inference.runtime import ModelError, ModelZoo
from demo.web.patches import (TimedH11Protocol, answer_unknown_events, bound_sessions, check_event_inputs,
                               quiet_cancelled_requests, write_pictures_once)
from demo.web.ui import APP_READY_JS, app_css, build_ui
from demo.web.upload_cache import BoundUploadCache
from demo.web.event_values import checked_values
from demo.web.uploads import checked_file_paths
from demo.web.v2 import build_v2_router
from demo.web.inspect_api import build_inspect_router
from demo.web.manual import add_manual_routes


def create_app(zoo: ModelZoo, upload_cache_bytes: int = int(UPLOAD_CACHE_MB.default) * 2**20) -> FastAPI:
    tune_malloc()  # the decode budget bounds live image bytes; this keeps RSS near them, and photos off page faults
    ui = build_ui(zoo)
    ui.queue(default_concurrency_limit=4, max_size=64)
    # Gradio keeps per-session state in memory for up to this many sessions (default 10,000);
    # every API caller is a session, and under load that was ~130 KB each
    bound_sessions(ui, SESSION_CAPACITY)
    answer_unknown_events()
    write_pictures_once()  # a picture being served is never rewritten under the reader
    # run_history off: the server would otherwise keep a record of every call (memory grew ~130 KB
    # per Gradio request under load); nobody here needs to replay runs
    api = build_api(zoo)
    api.include_router(build_v2_router(zoo))  # the Open Inference Protocol (KServe v2 / Triton) beside /api
    api.include_router(build_inspect_router(zoo))  # /api/inspect, /api/models/<id>/mistakes: look inside a model
    answer_unknown_routes(api)  # last: only what no route above takes

    add_manual_routes(api)  # /readme, the docs it links to, /readme.md
    app = gr.mount_gradio_app(api, ui, path="/", max_file_size=MAX_BYTES, show_error=True,
                              footer_links=["api"], css=app_css(), js=APP_READY_JS, run_history=False)
    # mounting never "launches" the Blocks: no caller may name a server path, or send what no control sends
    check_event_inputs(ui, checked_file_paths, checked_values)
    app.add_middleware(BoundUploadCache, limit_bytes=upload_cache_bytes)
    app.add_middleware(connections.LimitBody)
    app.add_middleware(connections.RefuseEncodedBody)
    app.add_middleware(connections.AnswerHead)
    app.add_middleware(connections.LogClientDisconnect)  # outermost: sees disconnects from every route
    return app


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=HOST.get(), help="bind address (env HOST)")
    # a str default goes through `type` too: a bad PORT is the same one-line error
    p.add_argument("--port", type=port_number, default=PORT.get(), help="port (env PORT)")
    p.add_argument("--models-dir", default=None, help="folder with manifest.json and the .onnx files (env TINYZOO_MODELS)")
    p.add_argument("--provider", default=None, choices=["auto", "cpu", "cuda"], help="ONNX Runtime provider (env TINYZOO_PROVIDER)")
    p.add_argument("--upload-cache-mb", type=int, default=int(UPLOAD_CACHE_MB.get()),
                   help="most MiB of uploads kept in Gradio's cache; the oldest go first (env TINYZOO_UPLOAD_CACHE_MB)")
    add_backend_arguments(p)
    return p


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text[:20]!r}")
    return int(text)


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything says "serving": a port in use or a host that
    does not resolve is one plain line (uvicorn would log it after our "serving" line, exit 3)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a restart reuses the port
        sock.bind(address)
    except OSError as e:
        raise ModelError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def load_zoo(args) -> ModelZoo:
    """Every model loaded (and verified) up front: fail now, not on a first request. No models is an error."""
    zoo = open_zoo(args.models_dir, args.provider, args.backend, args.triton_url)
    if not zoo.ids():
        raise ModelError(f"{zoo.models_dir}: no models ({MANIFEST_NAME} missing or empty); {REBUILD_HINT}")
    for model_id in zoo.ids():
        zoo.get(model_id)
    return zoo


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sock = listening_socket(args.host, args.port)
        zoo = load_zoo(args)
    except ModelError as e:  # the operator's mistake: one line, no traceback
        print(f"tinyzoo demo: {e}", file=sys.stderr)
        return 2
    providers = sorted({zoo.get(i).provider for i in zoo.ids()})
    print(f"tinyzoo: {len(zoo.ids())} models from {zoo.models_dir} on {', '.join(providers)}; "
          f"serving http://{args.host}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(create_app(zoo, args.upload_cache_mb * 2**20), log_level="warning", http=TimedH11Protocol,
                            timeout_keep_alive=KEEP_ALIVE_S, h11_max_incomplete_event_size=MAX_HEAD_BYTES,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    quiet_cancelled_requests()  # after Config, which sets up uvicorn's loggers
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises Ctrl-C again once it has shut down: the stop asked for
        return 130
    return 0
