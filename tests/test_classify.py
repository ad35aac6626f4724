"""`tinyzoo classify`: every input kind, error rows, exit codes, resume after SIGTERM, and the
accuracy of real test images written as files."""
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest
from PIL import Image

from demo.batch.classify import main as classify
from tests.conftest import ROOT, drawn_digit_png


@pytest.fixture(scope="module")
def fashion_files(tmp_path_factory, test_split):
    """The full Fashion-MNIST test set as 10,000 PNG files, label in the name."""
    images, labels = test_split("fashion")
    folder = tmp_path_factory.mktemp("fashion-png")
    for i, (img, y) in enumerate(zip(images, labels)):
        Image.fromarray(img).save(folder / f"{i:05d}-{y}.png")
    return folder


def read_rows(path):
    with open(path, newline="") as f:  # CSV is RFC 4180: CRLF ends records, a CR inside a name stays
        text = f.read()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines()]
    return list(csv.DictReader(io.StringIO(text)))


def test_accuracy_on_the_real_test_set_matches_the_recorded_figure(fashion_files, zoo, tmp_path):
    out = tmp_path / "results.csv"
    assert classify([str(fashion_files), "--model", "fashion-cnn", "--out", str(out)]) == 0
    rows = read_rows(out)
    assert len(rows) == 10_000 and len({r["path"] for r in rows}) == 10_000
    labels = zoo.get("fashion-cnn").labels
    correct = sum(r["label"] == labels[int(r["path"].rsplit("-", 1)[1][:-4])] for r in rows)
    assert abs(correct / 10_000 - zoo.get("fashion-cnn").meta.measurements.test_accuracy) <= 0.002
    assert all(r["error"] == "" and float(r["top1_confidence"]) >= float(r["top2_confidence"]) for r in rows)


@pytest.fixture()
def mixed_inputs(tmp_path):
    """A folder tree, a zip, a tar.gz, a broken file and a text file."""
    seven = drawn_digit_png()
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "a.png").write_bytes(seven)
    (tmp_path / "in" / "sub" / "b.png").write_bytes(seven)
    (tmp_path / "in" / "notes.txt").write_text("not part of a folder's images")
    with zipfile.ZipFile(tmp_path / "batch.zip", "w") as z:
        z.writestr("x/one.png", seven)
        z.writestr("x/two.png", seven)
        z.writestr("readme.md", "skipped: not an image name")
    with zipfile.ZipFile(tmp_path / "notes.zip", "w") as z:  # no image inside: one error row for it
        z.writestr("notes.txt", "not an image")
    with tarfile.open(tmp_path / "batch.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("three.png")
        info.size = len(seven)
        t.addfile(info, io.BytesIO(seven))
    (tmp_path / "broken.png").write_bytes(seven[:150])
    (tmp_path / "fake.jpg").write_text("hello")
    return tmp_path


def test_every_input_kind(mixed_inputs, tmp_path, monkeypatch, capsys):
    out = tmp_path / "all.jsonl"
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{mixed_inputs / 'broken.png'}\n{mixed_inputs / 'fake.jpg'}\n"))
    status = classify([str(mixed_inputs / "in"), "--recursive", str(mixed_inputs / "*.zip"), str(mixed_inputs / "batch.tar.gz"),
                       "-", "--model", "mnist-cnn", "--out", str(out), "--workers", "2"])
    rows = {r["path"]: r for r in read_rows(out)}
    assert status == 1  # some failed
    ok = [p for p, r in rows.items() if not r["error"]]
    assert sorted(os.path.basename(p.split("::")[-1]) for p in ok) == ["a.png", "b.png", "one.png", "three.png", "two.png"]
    assert all(rows[p]["label"] == "7" for p in ok)
    assert f"{mixed_inputs / 'batch.zip'}::x/one.png" in rows
    assert "corrupt or truncated" in rows[str(mixed_inputs / "broken.png")]["error"]
    assert "not an image" in rows[str(mixed_inputs / "fake.jpg")]["error"]
    assert rows[str(mixed_inputs / "fake.jpg")]["label"] is None  # JSONL: null, not "", where there is no answer
    confidences = [v for r in rows.values() for k, v in r.items() if k.endswith("confidence")]
    assert all(isinstance(v, float) or v is None for v in confidences)
    assert rows[str(mixed_inputs / "notes.zip")]["error"].startswith("no image in this archive")
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{mixed_inputs / 'broken.png'}\n{mixed_inputs / 'fake.jpg'}\n"))
    status = classify([str(mixed_inputs / "in"), "--recursive", str(mixed_inputs / "*.zip"),
                       str(mixed_inputs / "batch.tar.gz"), "-", "--model", "mnist-cnn", "--out", str(out),
                       "--workers", "2", "--resume"])
    failed = len([r for r in rows.values() if r["error"]])
    assert status == 1 and f"0 classified, 0 failed, {len(rows)} already in {out} ({failed} of them failed)" \
        in capsys.readouterr().err  # the exit status counts them: the summary says so


def test_directory_without_recursive_takes_only_its_own_files(mixed_inputs, tmp_path):
    out = tmp_path / "flat.csv"
    assert classify([str(mixed_inputs / "in"), "--model", "mnist-cnn", "--out", str(out), "--workers", "1"]) == 0
    assert [os.path.basename(r["path"]) for r in read_rows(out)] == ["a.png"]


def test_min_confidence_and_top_k(mixed_inputs, tmp_path):
    out = tmp_path / "k.csv"
    assert classify([str(mixed_inputs / "in" / "a.png"), "--model", "mnist-cnn", "--out", str(out), "--top-k", "5",
                     "--min-confidence", "1", "--workers", "1"]) == 0
    [row] = read_rows(out)
    below = float(row["top1_confidence"]) < 1  # a top-1 below the bar leaves the label empty
    assert row["label"] == ("" if below else "7") and row["top1_label"] == "7" and "top5_label" in row


def test_rows_to_dev_null_need_no_format(mixed_inputs):
    """A timing run: `--out /dev/null` has no .csv or .jsonl to go by; it was a usage error."""
    assert classify([str(mixed_inputs / "in" / "a.png"), "--model", "mnist-cnn", "--out", os.devnull,
                     "--workers", "1"]) == 0


def test_top_k_past_the_classes_lists_them_all_and_says_so(mixed_inputs, tmp_path, capsys):
    out = tmp_path / "k.csv"
    assert classify([str(mixed_inputs / "in" / "a.png"), "--model", "mnist-cnn", "--out", str(out), "--top-k", "12",
                     "--workers", "1"]) == 0
    [row] = read_rows(out)
    assert "top10_label" in row and "top11_label" not in row
    assert "note: --top-k 12: mnist-cnn has 10 classes, so each row lists all 10" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["x.png", "--model", "mnist-nope"], "unknown model"),
    (["x.png", "--model", "MNIST_CNN"], "unknown model 'MNIST_CNN' (did you mean 'mnist-cnn'?); available: fash"),
    (["x.png", "--model", "m" * 5000], f"unknown model '{'m' * 60}'; available"),
    (["/no/such/file.png", "--model", "mnist-cnn"], "no such file"),
    (["/no/such/*.png", "--model", "mnist-cnn"], "no file matches"),
    (["x.png", "--model", "hello-rnn"], "image classifier"),
    (["x.png", "--model", "mnist-cnn", "--out", "results.xlsx"], ".csv or .jsonl"),
    (["x.png", "--model", "mnist-cnn", "--min-confidence", "60"], "from 0 to 1 (0.6 for 60%), got 60"),
    (["x.png", "--model", "mnist-cnn", "--min-confidence", "nan"], "from 0 to 1"),
    (["x.png", "--model", "mnist-cnn", "--workers", "100000"], "--workers 100000: at most"),
])
def test_usage_errors_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.png").write_bytes(drawn_digit_png())
    assert classify(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err) < 1000  # the models classify takes are listed, a caller's long id is cut
    assert "available" not in err or ("hello-rnn" not in err and "diabetes" not in err)


@pytest.mark.parametrize("argv, message", [
    (["folder"], "folder: no image or archive file in this folder (it holds 1 other file and 1 folder: --recursive"),
    (["folder/inner"], "it holds 0 other files and 0 folders"),
])
def test_a_folder_with_no_image_is_a_usage_error_that_says_what_it_holds(tmp_path, capsys, monkeypatch, argv, message):
    """Not "0 classified" and exit 0: a typo'd folder or one whose pictures sit a level down."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder" / "inner").mkdir(parents=True)
    (tmp_path / "folder" / "notes.txt").write_text("not a picture")
    assert classify(argv + ["--model", "mnist-cnn", "--out", "rows.csv"]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "rows.csv").exists()


def test_stdout_output_parses_as_csv(mixed_inputs, capfd):
    assert classify([str(mixed_inputs / "in" / "a.png"), "--model", "mnist-cnn", "--workers", "1"]) == 0
    rows = list(csv.DictReader(io.StringIO(capfd.readouterr().out)))
    assert rows[0]["label"] == "7"
    confidences = [v for k, v in rows[0].items() if k.endswith("confidence")]
    assert all(float(v) == round(float(v), 6) and len(v) <= 8 for v in confidences), confidences


def test_stdout_appended_to_a_file_keeps_what_the_file_held(mixed_inputs, tmp_path):
    """`tinyzoo classify ... >> log`: the shell opened the file to append; the run adds its rows
    after what it held, under the CSV header unless the file already starts with it."""
    log = tmp_path / "run.log"
    log.write_text("an earlier line\n")
    for run in range(2):
        with open(log, "a") as out:
            done = subprocess.run([sys.executable, "-m", "demo.cli", "classify", str(mixed_inputs / "in" / "a.png"),
                                   "--model", "mnist-cnn", "--workers", "1"], cwd=ROOT, stdout=out,
                                  stderr=subprocess.PIPE, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        if run == 0:  # the second run appends to a file that starts with the header: rows only
            log.write_text("".join(log.read_text().splitlines(keepends=True)[1:]))
    held = log.read_text().splitlines()
    assert held[0].startswith("path,label,confidence,") and len(held) == 3, held
    assert [row[:2] for row in csv.reader(held[1:])] == [[str(mixed_inputs / "in" / "a.png"), "7"]] * 2, held


def test_stdout_after_other_lines_gets_the_header(mixed_inputs, tmp_path):
    """`{ echo "# run 3"; tinyzoo classify ...; } > log.csv`: the rows come under their header."""
    log = tmp_path / "log.csv"
    log.write_text("# run 3\n")
    with open(log, "a") as out:
        done = subprocess.run([sys.executable, "-m", "demo.cli", "classify", str(mixed_inputs / "in" / "a.png"),
                               "--model", "mnist-cnn", "--workers", "1"], cwd=ROOT, stdout=out, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    held = log.read_text().splitlines()
    assert held[0] == "# run 3" and held[1].startswith("path,label,confidence,") and len(held) == 3, held


@pytest.mark.parametrize("written, asked", [("csv", "jsonl"), ("jsonl", "csv")])
def test_resume_in_the_other_format_names_the_format_the_file_holds(mixed_inputs, tmp_path, capsys, written, asked):
    out = tmp_path / f"rows.{written}"
    seven = str(mixed_inputs / "in" / "a.png")
    assert classify([seven, "--model", "mnist-cnn", "--out", str(out), "--workers", "1"]) == 0
    held = out.read_bytes()
    capsys.readouterr()
    assert classify([seven, "--model", "mnist-cnn", "--out", str(out), "--format", asked, "--resume"]) == 2
    assert f"holds {written.upper()} rows; resume with --format {written}" in capsys.readouterr().err
    assert out.read_bytes() == held


def test_resume_with_another_datasets_model_is_refused_not_mixed(mixed_inputs, tmp_path, capsys):
    out, picture = str(tmp_path / "mixed.csv"), str(mixed_inputs / "in" / "a.png")
    assert classify([picture, "--model", "fashion-cnn", "--out", out, "--workers", "1"]) == 0
    written = open(out).read()
    assert classify([picture, str(mixed_inputs / "in" / "sub"), "--model", "mnist-cnn", "--out", out, "--resume",
                     "--workers", "1"]) == 2
    assert "holds answers of another model" in capsys.readouterr().err and open(out).read() == written


def test_a_local_run_never_loads_the_triton_client(tmp_path):
    """Its pydantic schemas and HTTP code were a third of the command's start-up: --backend triton only."""
    (tmp_path / "a.png").write_bytes(drawn_digit_png())
    code = ("import sys; from demo.batch.classify import main; status = main(sys.argv[1:]); "
            "print(status, sorted({'pydantic', 'http.client', 'demo.inference.remote'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.png"), "--model", "mnist-cnn",
                           "--out", str(tmp_path / "out.csv")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "0 []", done.stderr


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_sigterm_then_resume_gives_exactly_one_row_per_input(fashion_files, tmp_path, suffix):
    out = tmp_path / f"results{suffix}"
    cmd = [sys.executable, "-m", "demo.cli", "classify", str(fashion_files), "--model", "fashion-cnn",
           "--out", str(out), "--batch-size", "16", "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    first = read_rows(out)
    assert 0 < len(first) < 10_000, "the run should have been stopped part-way"
    with open(out, "a") as f:
        f.write('{"path": "cut-off mid-li' if suffix == ".jsonl" else "/cut/off/mid-li")  # as a hard kill might leave
    assert classify([str(fashion_files), "--model", "fashion-cnn", "--out", str(out), "--resume"]) == 0
    rows = read_rows(out)
    assert len(rows) == 10_000 and len({r["path"] for r in rows}) == 10_000


def test_rows_keep_input_order_when_some_inputs_fail(tmp_path):
    """A chunk's unreadable files are found before its pictures are read by the model: their rows
    still go out where the inputs are, for every chunking (workers running the model, or not)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(40):
        name = folder / f"{i:03d}.png"
        if i % 7 == 3:
            name.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        else:
            name.write_bytes(drawn_digit_png())
    for workers in ("1", "2"):
        out = tmp_path / f"rows-{workers}.csv"
        assert classify([str(folder), "--model", "mnist-cnn", "--workers", workers, "--out", str(out)]) == 1
        names = [r["path"] for r in read_rows(out)]
        assert names == sorted(names) and len(names) == 40
        assert [bool(r["error"]) for r in read_rows(out)] == [i % 7 == 3 for i in range(40)]


def test_a_workers_session_keeps_its_memory_from_chunk_to_chunk(fashion_files, zoo, monkeypatch):
    """A worker runs chunk after chunk of one size: its session keeps ORT's CPU arena, and a chunk
    takes the buffers the one before left instead of mapping them afresh (without the arena: ~1,800
    page faults for 125 pictures, a few microseconds each on a VM). The server's sessions keep no
    arena (test_v2_limits)."""
    import resource

    from demo.batch import local
    from demo.batch.inputs import list_items

    monkeypatch.setattr(local, "_WORKER_MODEL", None)  # the worker's session, built on its first chunk
    row, model = zoo.manifest["models"]["fashion-cnn"], zoo.get("fashion-cnn")
    items = list_items([str(fashion_files)], recursive=False)[:125]
    chunk = local.Chunk(items, model.meta.input, 1, 0.0, (str(zoo.models_dir / row["onnx"]), row["sha256"]))
    faults = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        slots, _, _ = local.classify_chunk(chunk)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
        assert all(r.error == "" for r in slots) and len(slots) == 125
    assert faults[-1] < 200, faults
