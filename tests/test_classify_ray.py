"""`tinyzoo classify --engine ray` on a local Ray cluster this test starts (2 CPUs, ports
7870-7899): the same rows as the local engine on a few hundred files with broken ones among
them, in input order, and --resume carrying on without duplicates."""
import csv
import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from demo.batch.inputs import list_items
from tests.conftest import ROOT, drawn_digit_png

pytest.importorskip("ray", reason="ray is the optional tinyzoo[scale] extra (make test installs it)")

GCS_PORT = 7870
# every port Ray opens, inside this suite's range; workers take 7880-7899
RAY_PORTS = ["--port=7870", "--object-manager-port=7871", "--node-manager-port=7872", "--ray-client-server-port=7873",
             "--dashboard-agent-listen-port=7874", "--dashboard-agent-grpc-port=7875", "--runtime-env-agent-port=7876",
             "--metrics-export-port=7877", "--min-worker-port=7880", "--max-worker-port=7899"]
START_TIMEOUT_S = 180  # two shared cores: Ray's first start can take a minute
RUN_TIMEOUT_S = 600
CONFIDENCE_ATOL = 2e-6  # confidences are rounded to 6 decimals; another batch split may move the last one


# Ray binds its ports on every interface whatever --node-ip-address says, so the test cluster
# keeps token authentication on, with a token of its own that only this test's processes know
RAY_TOKEN = secrets.token_hex(32)


def environment() -> dict:
    return {**os.environ, "TINYZOO_PROVIDER": "cpu", "PYTHONPATH": str(ROOT),
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": RAY_TOKEN}


@pytest.fixture(scope="module")
def ray_cluster():
    """`ray start --head --block` in its own process group, stopped by that group's id."""
    temp = tempfile.mkdtemp(prefix="tzray")  # short: Ray's socket paths must stay under 108 bytes
    ray = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen([str(ray), "start", "--head", "--block", "--num-cpus=2", "--num-gpus=0",
                             "--include-dashboard=false", "--disable-usage-stats", "--node-ip-address=127.0.0.1",
                             f"--temp-dir={temp}", *RAY_PORTS], cwd=ROOT, env=environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    address = f"127.0.0.1:{GCS_PORT}"
    deadline = time.time() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"ray start exited:\n{proc.stdout.read()}")
        status = subprocess.run([str(ray), "status", f"--address={address}"], env=environment(),
                                capture_output=True, text=True, check=False, timeout=60)
        if status.returncode == 0 and "CPU" in status.stdout:
            break
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"Ray did not start within {START_TIMEOUT_S} s:\n{status.stderr}")
        time.sleep(2)
    yield address
    # SIGKILL, the whole group (raylet, GCS, workers): on SIGTERM `ray start --block` drains the
    # node for up to 30 s, and nothing is left to drain once the tests are done
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def inputs(test_split, tmp_path_factory) -> Path:
    """280 Fashion-MNIST test images as PNG and JPEG, a zip and a tar.gz of more, and broken files."""
    from PIL import Image

    images, _ = test_split("fashion")
    root = tmp_path_factory.mktemp("ray-inputs")
    (root / "sub").mkdir()
    for i, image in enumerate(images[:280]):
        Image.fromarray(image).save(root / ("sub" if i % 4 == 0 else ".") / f"{i:04d}.{'jpg' if i % 7 == 0 else 'png'}")

    def png(i: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(images[300 + i]).save(buf, format="PNG")
        return buf.getvalue()

    with zipfile.ZipFile(root / "batch.zip", "w") as archive:
        for i in range(12):
            archive.writestr(f"z/{i:02d}.png", png(i))
        archive.writestr("z/broken.png", b"\x89PNG\r\n\x1a\n truncated")
    with tarfile.open(root / "more.tar.gz", "w:gz") as archive:
        for i in range(12, 20):
            data = png(i)
            info = tarfile.TarInfo(f"t/{i:02d}.png")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("not an image at all")
    (root / "cut.png").write_bytes(drawn_digit_png()[:200])
    (root / "broken.zip").write_bytes(b"PK\x03\x04 not a zip")
    return root


def classify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "demo.cli", "classify", *args], cwd=ROOT, env=environment(),
                          capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT_S)


def read_rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def assert_same_rows(ray_rows: list[dict], local_rows: list[dict]) -> None:
    """Same inputs, labels, errors; confidences within CONFIDENCE_ATOL."""
    local_by_path = {row["path"]: row for row in local_rows}
    assert len(local_by_path) == len(local_rows) == len(ray_rows) == len({row["path"] for row in ray_rows})
    for row in ray_rows:
        expected = local_by_path[row["path"]]
        for column, value in row.items():
            if column.endswith("confidence") and value:
                assert float(value) == pytest.approx(float(expected[column]), abs=CONFIDENCE_ATOL), (row, expected)
            else:
                assert value == expected[column], (column, row, expected)


def test_ray_engine_writes_the_local_engines_rows_in_input_order(ray_cluster, inputs, tmp_path):
    common = [str(inputs), "--recursive", "--model", "fashion-cnn", "--top-k", "3"]
    local = classify(*common, "--workers", "2", "--out", str(tmp_path / "local.csv"))
    assert local.returncode == 1, local.stderr  # some inputs are broken
    ray_run = classify(*common, "--engine", "ray", "--ray-address", ray_cluster, "--batch-size", "32",
                       "--out", str(tmp_path / "ray.csv"))
    assert ray_run.returncode == 1 and "failed" in ray_run.stderr, ray_run.stderr
    assert "Traceback" not in ray_run.stderr
    local_rows, ray_rows = read_rows(tmp_path / "local.csv"), read_rows(tmp_path / "ray.csv")
    assert_same_rows(ray_rows, local_rows)
    errors = {r["path"].removeprefix(f"{inputs}/"): r["error"] for r in ray_rows if r["error"]}
    assert set(errors) == {"empty.png", "text.png", "cut.png", "broken.zip", "batch.zip::z/broken.png"}, errors
    assert sum(1 for r in ray_rows if r["label"]) == 280 + 20
    # input order: the listing's, whatever batch finished first
    listed = [item.name for item in list_items([str(inputs)], recursive=True)]
    assert [r["path"] for r in ray_rows] == listed
    # --resume: a run killed after 100 rows (its last line cut short) carries on without duplicates
    partial = tmp_path / "resumed.csv"
    lines = (tmp_path / "ray.csv").read_text().splitlines(keepends=True)
    partial.write_text("".join(lines[:101]) + lines[101][:15])
    resumed = classify(*common, "--engine", "ray", "--ray-address", ray_cluster, "--batch-size", "32",
                       "--out", str(partial), "--resume")
    assert resumed.returncode == 1 and "100 already in" in resumed.stderr, resumed.stderr
    assert read_rows(partial) == ray_rows


def test_ray_engine_usage_errors_are_one_line(inputs, tmp_path):
    done = classify(str(inputs), "--model", "hello-rnn", "--engine", "ray", "--out", str(tmp_path / "x.csv"))
    assert done.returncode == 2 and "classify needs an image classifier" in done.stderr
    done = classify(str(inputs), "--model", "fashion-cnn", "--engine", "ray", "--resume")
    assert done.returncode == 2 and "--resume needs an output file" in done.stderr
    nobody = f"127.0.0.1:{GCS_PORT - 11}"  # in this suite's port range, never listened on
    done = classify(str(inputs), "--model", "fashion-cnn", "--engine", "ray", "--ray-address", nobody,
                    "--out", str(tmp_path / "y.csv"))
    assert done.returncode == 2 and f"no Ray cluster answers at {nobody}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "y.csv").exists()


def test_rows_are_written_in_input_order_as_they_arrive():
    """The actor's rows travel as JSON text: floats, empty strings and labels come back equal."""
    import dataclasses
    import json

    from demo.batch.job import Tally
    from demo.batch.output import Row
    from demo.batch.ray_engine import write_in_order

    class Collect:
        def __init__(self):
            self.rows = []

        def write(self, rows):
            self.rows += rows

    rows = [Row("a.png", "7", 0.9999899864196777, (("7", 0.9999899864196777),)), Row("b.png", error="broken")]
    sent = [json.dumps(dataclasses.asdict(row)) for row in rows]
    batches = [{"index": np.array([1]), "row": np.array([sent[1]], dtype=object)},
               {"index": np.array([0]), "row": np.array([sent[0]], dtype=object)}]
    writer, tally = Collect(), Tally()
    write_in_order(batches, writer, tally)
    assert (tally.done, tally.failed) == (1, 1)
    assert [row.values(1) for row in writer.rows] == [row.values(1) for row in rows]


def test_ray_engine_against_a_lying_triton_server(ray_cluster, zoo, tmp_path):
    """--backend triton on Ray, every lie of tests/fake_oip.py between honest answers: each input
    gets one row, in input order; exactly the inputs of honest answers are classified, the others
    are error rows saying what the server did wrong; exit 1, no traceback."""
    from tests import fake_oip

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4 * len(fake_oip.ANSWER_LIES)):  # two per request
        (folder / f"{i:03d}.png").write_bytes(drawn_digit_png())
    server = fake_oip.start(zoo.get("mnist-cnn").session, "mnist-cnn")
    server.cycle = [mode for lie in sorted(fake_oip.ANSWER_LIES) for mode in ("honest", lie)]
    try:
        done = classify(str(folder), "--model", "mnist-cnn", "--engine", "ray", "--ray-address", ray_cluster,
                        "--backend", "triton", "--triton-url", server.url, "--batch-size", "2",
                        "--out", str(tmp_path / "rows.csv"))
    finally:
        fake_oip.stop(server)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    rows = read_rows(tmp_path / "rows.csv")
    assert [r["path"] for r in rows] == sorted(str(p) for p in folder.iterdir())
    classified = [r for r in rows if not r["error"]]
    assert len(classified) == sum(size for mode, size in server.requests if mode in fake_oip.HONEST)
    assert all(r["label"] == "7" for r in classified)
    assert all(r["error"].startswith(f"Triton at {server.url} gave no usable answer") for r in rows if r["error"])
