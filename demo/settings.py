"""Every environment variable and every shared limit of the serving side, in one place.

The lowest layer of demo/: it imports nothing of tinyzoo. An environment variable is read when
its value is asked for (`PORT.get()`), so a test or a caller can set it first. docs/settings.md
lists the same table; tests/test_settings.py keeps the two equal.
"""
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str | None
    help: str

    def get(self) -> str | None:
        return os.environ.get(self.name) or self.default


HOST = EnvVar("HOST", "127.0.0.1", "address `tinyzoo demo` binds to")
PORT = EnvVar("PORT", "7860", "port `tinyzoo demo` listens on")
MODELS_DIR = EnvVar("TINYZOO_MODELS", None, "folder with manifest.json and the .onnx files "
                    "(default: the checkout's models/, else ./models)")
PROVIDER = EnvVar("TINYZOO_PROVIDER", "auto", "ONNX Runtime provider: auto (CUDA only when a GPU really "
                  "works), cpu or cuda")
DATA_DIR = EnvVar("TINYZOO_DATA", None, "where the datasets' IDX files are (DIR/<dataset>/ or DIR itself)")
CACHE_HOME = EnvVar("XDG_CACHE_HOME", None, "datasets downloaded with --download go to $XDG_CACHE_HOME/tinyzoo "
                    "(default ~/.cache/tinyzoo)")
UPLOAD_CACHE_MB = EnvVar("TINYZOO_UPLOAD_CACHE_MB", "256", "most MiB of uploads kept in Gradio's cache; "
                         "the oldest go first")
BACKEND = EnvVar("TINYZOO_BACKEND", "local", "run the models in-process (local) or on a Triton server (triton)")
TRITON_URL = EnvVar("TINYZOO_TRITON_URL", None, "HOST:PORT of a Triton / Open Inference Protocol server "
                    "for --backend triton")
BODY_DEADLINE = EnvVar("TINYZOO_BODY_DEADLINE_S", "60", "seconds a request body may take to arrive, "
                       "whatever its pace (a trickled body is cut off)")
ENV_VARS = (HOST, PORT, MODELS_DIR, PROVIDER, DATA_DIR, CACHE_HOME, UPLOAD_CACHE_MB, BACKEND, TRITON_URL, BODY_DEADLINE)

# --- pictures ---------------------------------------------------------------------------------
MAX_BYTES = 50 * 2**20  # one image file, upload or request body
MAX_PIXELS = 40_000_000  # a 20000x20000 upload is refused before it is decoded
DECODE_BUDGET_BYTES = 512 * 2**20  # decoded-image memory for the whole process (imaging/budget.py)
DECODE_WAIT_S = 15.0  # how long an image waits for room in that budget before "server busy"

# --- answers ----------------------------------------------------------------------------------
TOP_K = 3  # classes listed with every image answer
UNSURE_BELOW = 0.6  # calibrated top-1 probability under which an answer is marked unsure

# --- HTTP -------------------------------------------------------------------------------------
PREDICT_MAX_BYTES = 2**20  # /api/predict: a sentence or a few numbers, plus a char RNN's state
HEAD_TIMEOUT_S = 10.0  # from the first byte (or the connection) to the end of the request head
BODY_IDLE_TIMEOUT_S = 10.0  # longest silence in the middle of a body
KEEP_ALIVE_S = 5  # uvicorn's own idle timeout between requests
SHUTDOWN_GRACE_S = 5  # SIGTERM / Ctrl-C: requests under way get this long (an open page's stream never ends)
MAX_HEAD_BYTES = 16 * 2**10  # a longer request head gets a 431 (demo/web/patches.py)
MAX_BODY_BYTES = MAX_BYTES + 2**20  # one image upload plus room for a multipart form's headers
SESSION_CAPACITY = 256  # Gradio sessions kept in memory (its default is 10,000)

# --- Triton backend -----------------------------------------------------------------------------
TRITON_MAX_BATCH = 256  # export/triton.py's max_batch_size for batchable models
TRITON_TIMEOUT_S = 60.0

# --- Open Inference Protocol requests and answers (/v2, and the Triton client) ---------------------
IMAGE_MAX_BATCH = TRITON_MAX_BATCH  # a Triton client sends at most this many rows
TABULAR_MAX_BATCH = 256
SEQUENCE_MAX_BATCH = 64  # a char RNN answers batch x sequence x vocab logits: 64 x 256 x 4 stays ~1 MB of JSON
SEQUENCE_MAX_LENGTH = 256  # /api/predict's cap (the models' own max_length): one sentence, not a book
# the longest JSON number worth sending, with its separator ("-1.1754943508222875e-38, "): JSON holding
# N numbers is refused past N times this, plus room for names, shapes and parameters, before it is parsed
JSON_BYTES_PER_NUMBER = 32
V2_CONCURRENT = 4  # inferences read, parsed and run at once; more wait (their bodies unread, in the socket):
# 64 at once, each a 4 MB JSON body, held 1.5 GB and the GIL, and the health route took 12 s to answer
V2_WAIT_S = 15.0  # how long a request waits for one of those before "server busy"
JSON_HEADER_BYTES = 64 * 2**10
