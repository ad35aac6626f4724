"""The architecture is a contract: import-linter checks pyproject's [tool.importlinter] contracts
(demo/ in layers, web and batch independent, no torch/training/export in demo/, no cycles)."""
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["cli | __main__", "web | batch", "inference", "imaging", "contract", "settings"]


def contracts(kind: str) -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return [c for c in config["contracts"] if c["type"] == kind]


def test_the_contracts_state_the_architecture():
    [layers] = contracts("layers")
    assert layers["layers"] == LAYERS and layers["containers"] == ["demo"]
    forbidden = {source: set(c["forbidden_modules"]) for c in contracts("forbidden") for source in c["source_modules"]}
    assert {"torch", "training", "export"} <= forbidden["demo"]
    assert {"demo.web", "demo.batch", "demo.inference", "demo.imaging"} <= forbidden["training"] & forbidden["export"]
    assert [c["ancestors"] for c in contracts("acyclic_siblings")] == [["demo"]]


def test_import_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "lint-imports not found: install the dev extra (pip install -e '.[dev]')"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
