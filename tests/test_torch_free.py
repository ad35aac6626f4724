"""demo/ imports and serves with torch unimportable (as after a plain `pip install .`)."""
import subprocess
import sys
import textwrap

from tests.conftest import ROOT, TORCH_PACKAGES, blocker, drawn_digit_png

BLOCK_TORCH = blocker(TORCH_PACKAGES)

SERVE = textwrap.dedent("""
    import sys
    from demo.web.server import build_ui, create_app
    from demo.inference.runtime import ModelZoo
    zoo = ModelZoo(provider="cpu")
    pred = zoo.get("mnist-cnn").classify(open(sys.argv[1], "rb").read())
    print("label", pred.label, pred.provider)
    create_app(zoo)
    import demo.cli, demo.imaging.prepare, demo.contract
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "safetensors"))
    print("leaked", leaked)
""")


def test_demo_serves_without_torch(tmp_path):
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_digit_png())
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH + SERVE, str(image)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "label 7 CPUExecutionProvider" in result.stdout
    assert "leaked []" in result.stdout


def test_blocker_really_blocks():
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH + "import torch"], capture_output=True, text=True)
    assert result.returncode != 0 and "blocked" in result.stderr


def test_cli_says_which_extra_training_needs():
    code = BLOCK_TORCH + "from demo.cli import main; raise SystemExit(main(['train', 'mnist-cnn']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "pip install 'tinyzoo[train]'" in result.stderr
