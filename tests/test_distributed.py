"""`tinyzoo train` under torchrun: 2 CPU processes (gloo) on a small slice match one process."""
import json
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, require_dataset

ARGS = ["fashion-softmax", "--epochs", "2", "--limit-train", "4096", "--batch-size", "256", "--optimizer", "sgd",
        "--lr", "0.1", "--scheduler", "none"]


def test_two_process_ddp_matches_one_process(tmp_path):
    require_dataset("fashion")
    single = subprocess.run([sys.executable, "-m", "training", *ARGS, "--out-dir", str(tmp_path / "one"),
                             "--log-dir", str(tmp_path / "one-log")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "training", *ARGS, "--out-dir", str(tmp_path / "two"),
                          "--log-dir", str(tmp_path / "two-log")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one = json.loads((tmp_path / "one" / "fashion-softmax.json").read_text())
    two = json.loads((tmp_path / "two" / "fashion-softmax.json").read_text())
    assert two["processes"] == 2 and one["processes"] == 1
    # same global batches, gradients averaged over ranks: the same steps up to float summation order
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= 0.005
    a, b = load_file(tmp_path / "one" / "fashion-softmax.safetensors"), load_file(tmp_path / "two" / "fashion-softmax.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)
    assert ddp.stdout.count("fashion-softmax epoch 1/2") == 1  # rank 0 alone reports
