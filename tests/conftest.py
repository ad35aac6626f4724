"""Shared fixtures. MNIST-only tests skip (with the reason) where MNIST files are absent;
Fashion-MNIST must be there: `make test` installs it."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from demo.contract import dataset_available, load_split
from demo.inference.runtime import ModelZoo, default_models_dir

ROOT = Path(__file__).resolve().parents[1]

# Property tests: `make test` draws the same examples on every run (derandomized: a red run is a
# change in the code, not luck); `make fuzz` (HYPOTHESIS_PROFILE=fuzz) searches at random for long,
# and tests/test_fuzz.py keeps what it finds as files in tests/fuzz_cases/ that every run replays
settings.register_profile("test", derandomize=True, deadline=None, max_examples=200,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz", deadline=None, max_examples=int(os.environ.get("TINYZOO_FUZZ_EXAMPLES", 10_000)),
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "test"))
# a test accuracy recorded at export against the one measured here: fp32 sums differ a little by
# instruction set (AVX2, AVX-512...) and can flip a borderline prediction; 0.1 pt = 10 of 10,000 images
FP32_RECORDED_TOLERANCE = 0.001
TORCH_PACKAGES = ("torch", "torchvision", "onnx", "onnxscript", "safetensors")


def blocker(packages: tuple[str, ...]) -> str:
    """Python source that makes importing any of `packages` fail in the process that runs it."""
    return textwrap.dedent(f"""
        import importlib.abc, sys
        class Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {packages!r}:
                    raise ModuleNotFoundError(f"{{name}} is blocked: the serving side must not need it", name=name)
        sys.meta_path.insert(0, Blocked())
    """)


def require_dataset(name: str) -> None:
    if dataset_available(name):
        return
    if name == "mnist":
        pytest.skip("MNIST IDX files not found (set TINYZOO_DATA or put them in ../shared/data/mnist)")
    pytest.fail(f"{name} data missing: `make test` installs it (apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="session")
def zoo() -> ModelZoo:
    # every core per session, as a batch job has them: the tests run whole test sets through it
    return ModelZoo(default_models_dir(), provider="cpu", threads=0)


@pytest.fixture(scope="session")
def test_split():
    """dataset name -> (images uint8 [N,28,28], labels [N]), loaded once per session."""
    cache = {}

    def get(name: str):
        require_dataset(name)
        if name not in cache:
            cache[name] = load_split(name, "test")
        return cache[name]

    return get


@pytest.fixture(scope="session")
def prepared_test_set(test_split):
    """model -> (its whole test set, each image through the runtime's preparation, [N, *input]; labels).
    The input recipe decides the tensors, so models that share a dataset and a recipe (every fp32
    model and its int8 variant) share one preparation of 10,000 images (~1.4 s here)."""
    cache = {}

    def get(model) -> tuple[np.ndarray, np.ndarray]:
        key = (model.meta.dataset, model.meta.input)
        if key not in cache:
            images, labels = test_split(model.meta.dataset)
            cache[key] = np.stack([model.prepare(img).tensor for img in images]), labels
        return cache[key]

    return get


@pytest.fixture(scope="session")
def served_accuracy(zoo, prepared_test_set):
    """model id -> the fp32 file's accuracy on its whole test set as the runtime prepares it: the
    accuracy floor and the int8 comparison share one run of a ResNet over 10,000 images (~14 s here)."""
    cache = {}

    def get(model_id: str) -> float:
        if model_id not in cache:
            model = zoo.get(model_id)
            batch, labels = prepared_test_set(model)
            cache[model_id] = float((model.run(batch).argmax(1) == labels).mean())
        return cache[model_id]

    return get


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(log, **env):
    """`python -m demo` in a subprocess on a free port, output to the file `log`, extra `env` -> (base URL, process)."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "TINYZOO_PROVIDER": "cpu", **env}
    proc = subprocess.Popen([sys.executable, "-m", "demo"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited early:\n{Path(log.name).read_text()}")
            try:
                urllib.request.urlopen(url + "/api/models", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("server did not answer within 90 s")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """`python -m demo` in a subprocess on a free port -> its base URL."""
    with open(tmp_path_factory.mktemp("server") / "server.log", "w") as log, running_server(log) as (url, _):
        yield url


def post(url: str, body: bytes) -> tuple[int, dict]:
    """POST raw bytes -> (status, JSON body), errors included."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def drawn_digit_png(size: int = 240, mode: str = "RGB", width: int = 18) -> bytes:
    """A '7' in black marker on white paper, off-centre, as a person would photograph/scan it."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    s = size / 240
    draw.line([(70 * s, 60 * s), (170 * s, 60 * s), (110 * s, 200 * s)], fill="black", width=max(1, int(width * s)),
              joint="curve")
    buf = io.BytesIO()
    img.convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height (a decompression bomb's header) with no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def odd_uploads() -> dict[str, tuple[bytes, str | None]]:
    """name -> (file bytes, expected error fragment or None when it must classify as '7')."""
    import io

    from PIL import Image

    seven = Image.open(io.BytesIO(drawn_digit_png())).convert("L")

    def encode(img, fmt, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return buf.getvalue()

    blank = Image.new("L", seven.size, 255)
    sixteen = Image.fromarray(np.asarray(seven, np.uint16) * 257)  # I;16, full 16-bit range
    return {
        "not-an-image": (b"GIF89a? no, just text pretending", "not an image"),
        "truncated-png": (drawn_digit_png()[:300], "corrupt or truncated"),
        "20000x20000": (png_header_only(20000, 20000), "too large"),
        "animated-gif": (encode(seven, "GIF", save_all=True, append_images=[blank], duration=100, loop=0), None),
        "16-bit-png": (encode(sixteen, "PNG"), None),
        "cmyk-jpeg": (encode(seven.convert("CMYK"), "JPEG", quality=95), None),
    }
