"""`--backend triton` against a server that lies (issue 22, part 4): every answer is checked
against the model's own metadata and capped in size; a bad answer becomes error rows for exactly
the inputs of that request, in plain words, exit status 1; every input gets exactly one row.
The server is tests/fake_oip.py, on 127.0.0.1, running the real model for its honest answers."""
import csv
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import demo.inference.remote
from demo.batch.classify import main as classify
from demo.inference.remote import AnswerError, TritonZoo
from demo.inference.runtime import ModelError
from tests import fake_oip
from tests.conftest import ROOT, drawn_digit_png

INPUTS = 8  # two requests of --batch-size 4
EXCEPTION_NAME = re.compile(r"\b[A-Z][a-z]+(Error|Exception)\b|Traceback")


@pytest.fixture(scope="module")
def server(zoo):
    served = fake_oip.start(zoo.get("mnist-cnn").session, "mnist-cnn")
    yield served
    fake_oip.stop(served)


@pytest.fixture()
def lying(server):
    """The server, honest until the test says otherwise, with a fresh request log."""
    server.mode, server.metadata_mode, server.cycle, server.streamed = "honest", "honest", None, 0
    server.requests.clear()
    yield server
    server.mode, server.metadata_mode, server.cycle = "honest", "honest", None


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    for i in range(INPUTS):
        (folder / f"{i}.png").write_bytes(drawn_digit_png())
    return folder


def run_cli(server, digits, tmp_path, capsys, *extra) -> tuple[int, list[dict], str]:
    out = tmp_path / "rows.csv"
    status = classify([str(digits), "--model", "mnist-cnn", "--backend", "triton", "--triton-url", server.url,
                       "--batch-size", "4", "--workers", "1", "--out", str(out), *extra])
    rows = list(csv.DictReader(out.open(newline=""))) if out.exists() else []
    return status, rows, capsys.readouterr().err


def test_an_honest_server_classifies_every_input(lying, digits, tmp_path, capsys):
    for mode in fake_oip.HONEST:
        lying.mode = mode
        status, rows, err = run_cli(lying, digits, tmp_path, capsys)
        assert status == 0 and f"{INPUTS} classified, 0 failed" in err, err
        assert [r["label"] for r in rows] == ["7"] * INPUTS and not any(r["error"] for r in rows)


@pytest.mark.parametrize("mode", sorted(fake_oip.ANSWER_LIES))
def test_a_lying_answer_is_an_error_row_for_each_of_its_inputs(lying, digits, tmp_path, capsys, mode):
    lying.mode = mode
    status, rows, err = run_cli(lying, digits, tmp_path, capsys)
    assert status == 1 and f"0 classified, {INPUTS} failed" in err, err
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in digits.iterdir())  # each input once
    for row in rows:
        assert row["label"] == row["confidence"] == "" and row["error"].startswith(f"Triton at {lying.url} gave no "
                                                                                    "usable answer for mnist-cnn: ")
        assert fake_oip.ANSWER_LIES[mode] in row["error"], row["error"]
        assert not EXCEPTION_NAME.search(row["error"]) and "\n" not in row["error"] and "\x1b" not in row["error"]


def test_only_the_inputs_of_the_bad_answer_fail(lying, digits, tmp_path, capsys):
    lying.cycle = ["honest", "one-row-short"]
    status, rows, err = run_cli(lying, digits, tmp_path, capsys)
    assert status == 1 and "4 classified, 4 failed" in err, err
    assert [r["label"] for r in rows] == ["7"] * 4 + [""] * 4
    assert [bool(r["error"]) for r in rows] == [False] * 4 + [True] * 4


@pytest.mark.parametrize("mode", ["huge-declared", "huge-streamed"])
def test_a_gigabyte_answer_is_dropped_at_the_cap(lying, digits, tmp_path, capsys, mode):
    """The client stops reading a little past what 4 rows of 10 logits can take (64 KiB of header
    room + 32 bytes a number): the server gets rid of no more than that plus the sockets' buffers."""
    lying.mode = mode
    status, rows, _ = run_cli(lying, digits, tmp_path, capsys)
    assert status == 1 and len(rows) == INPUTS and all(r["error"] for r in rows)
    assert lying.streamed < 64 << 20  # of the 1 GiB offered


def test_a_trickled_answer_ends_at_the_deadline(lying, zoo, monkeypatch):
    monkeypatch.setattr(demo.inference.remote, "TIMEOUT_S", 1.0)
    model = TritonZoo(lying.url, zoo.models_dir, "cpu").get("mnist-cnn")
    lying.mode = "trickle"
    with pytest.raises(AnswerError, match="no complete answer within 1 s"):
        model.run(np.zeros((4, 1, 28, 28), np.float32))


@pytest.mark.parametrize("mode, fragment", [
    ("not-json", "gave no usable metadata for mnist-cnn (Invalid JSON"),
    ("shape-strings", "gave no usable metadata for mnist-cnn (outputs.0.shape.0: Input should be a valid integer"),
    ("no-outputs", "gave no usable metadata for mnist-cnn (outputs: Field required"),
    ("other-model", "serves a different mnist-cnn: outputs"),
])
def test_bad_metadata_is_one_line_exit_2(lying, digits, tmp_path, capsys, mode, fragment):
    lying.metadata_mode = mode
    status, rows, err = run_cli(lying, digits, tmp_path, capsys)
    assert status == 2 and fragment in err and err.count("\n") == 1, err
    assert not lying.requests and not rows


def test_a_server_gone_mid_run_costs_the_rows_it_owed(zoo, digits, tmp_path, capsys):
    """The first answer honest, then the server goes away: the rest are error rows, not a traceback."""
    served = fake_oip.start(zoo.get("mnist-cnn").session, "mnist-cnn")
    served.cycle = ["honest", "stop"]
    try:
        status, rows, err = run_cli(served, digits, tmp_path, capsys)
    finally:
        served.server_close()
    assert status == 1 and "4 classified, 4 failed" in err, err
    assert [r["label"] for r in rows] == ["7"] * 4 + [""] * 4
    assert all("connection refused" in r["error"] or "closed the connection" in r["error"] for r in rows[4:]), rows


def test_the_cli_process_with_workers_survives_every_lie(server, tmp_path):
    """The command as a user runs it, decode workers on, every lie in one run between honest answers."""
    for i in range(4 * len(fake_oip.ANSWER_LIES)):  # two per request
        (tmp_path / f"{i:03d}.png").write_bytes(drawn_digit_png())
    server.cycle = [mode for lie in sorted(fake_oip.ANSWER_LIES) for mode in ("honest", lie)]
    server.requests.clear()
    try:
        done = subprocess.run([sys.executable, "-m", "demo.cli", "classify", str(tmp_path), "--model", "mnist-cnn",
                               "--backend", "triton", "--triton-url", server.url, "--batch-size", "2",
                               "--workers", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "TINYZOO_PROVIDER": "cpu"})
    finally:
        server.cycle = None
    rows = list(csv.DictReader(io.StringIO(done.stdout, newline="")))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in tmp_path.iterdir())  # each input once
    # a connection dropped without an answer may be a kept-alive one the server closed while idle:
    # the client sends that request once more, on a new connection, and the next answer is its row's
    failed = [mode != "honest" for mode, size in server.requests if mode != "hang-up" for _ in range(size)]
    assert [bool(r["error"]) for r in rows] == failed
    assert all(r["label"] == "7" for r in rows if not r["error"])
    assert f"{len(rows) - sum(failed)} classified, {sum(failed)} failed" in done.stderr


def test_the_app_says_what_went_wrong(lying, zoo):
    """The app's path (ImageClassifier.classify on a TritonZoo model): a ModelError the web layers
    turn into a message, with the server's lie in words."""
    model = TritonZoo(lying.url, zoo.models_dir, "cpu").get("mnist-cnn")
    assert model.classify(drawn_digit_png()).label == "7"
    lying.mode = "nan"
    with pytest.raises(ModelError, match="output 'logits' holds NaN or infinity"):
        model.classify(drawn_digit_png())


def test_the_api_answers_502_with_the_servers_lie_in_words(lying, zoo):
    from fastapi.testclient import TestClient

    from demo.web.api import build_api

    api = TestClient(build_api(TritonZoo(lying.url, zoo.models_dir, "cpu")), raise_server_exceptions=False)
    assert api.post("/api/classify?model=mnist-cnn", content=drawn_digit_png()).json()["label"] == "7"
    for mode, fragment in [("one-row-short", "output 'logits' has shape [0, 10]"), ("hang-up", "closed the connection")]:
        lying.mode = mode
        answer = api.post("/api/classify?model=mnist-cnn", content=drawn_digit_png())
        assert answer.status_code == 502 and fragment in answer.json()["error"], answer.text
