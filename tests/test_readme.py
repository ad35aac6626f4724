"""README.md's model tables state what models/manifest.json records: one source for both."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((ROOT / "models" / "manifest.json").read_text())["models"]


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every pipe table in the text as a list of {header: cell} rows (bold markers dropped)."""
    tables, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append([cell.strip().replace("**", "") for cell in line.strip().strip("|").split("|")])
            continue
        if len(block) > 2:
            header, _separator, *rows = block
            tables.append([dict(zip(header, row)) for row in rows])
        block = []
    return tables


def table_with(header: str) -> list[dict[str, str]]:
    tables = [t for t in markdown_tables((ROOT / "README.md").read_text()) if t and header in t[0]]
    assert len(tables) == 1, f"README.md should have exactly one table with a {header!r} column"
    return tables[0]


def percent(cell: str) -> float:
    match = re.fullmatch(r"(\d+\.\d\d)%", cell)
    assert match, f"not a percentage with two decimals: {cell!r}"
    return float(match.group(1))


def test_image_table_matches_manifest():
    rows = table_with("test accuracy")
    assert {row["model"] for row in rows} == {i for i, m in MANIFEST.items()
                                             if m["task"] == "image-classification" and "variant_of" not in m}
    for row in rows:
        shipped = MANIFEST[row["model"]]
        assert percent(row["test accuracy"]) == pytest.approx(shipped["test_accuracy"] * 100, abs=0.005), row["model"]
        assert int(row["epochs shipped"]) == shipped["epochs"], row["model"]
        assert int(row["parameters"].replace(",", "")) == shipped["params"], row["model"]
        seconds = float(row["train s/epoch"].split()[0])
        assert seconds == pytest.approx(shipped["seconds_per_epoch"], abs=0.05), row["model"]
        assert int(row["ONNX KiB"]) == round(shipped["bytes"] / 1024), row["model"]


def test_int8_table_matches_manifest():
    rows = table_with("accuracy fp32 → int8")
    assert {f"{row['model']}-int8" for row in rows} == {i for i, m in MANIFEST.items() if m.get("precision") == "int8"}
    for row in rows:
        fp32, int8 = (percent(cell) for cell in row["accuracy fp32 → int8"].split(" → "))
        assert fp32 == pytest.approx(MANIFEST[row["model"]]["test_accuracy"] * 100, abs=0.005), row["model"]
        assert int8 == pytest.approx(MANIFEST[f"{row['model']}-int8"]["test_accuracy"] * 100, abs=0.005), row["model"]


def test_sequence_and_lesson_tables_match_manifest():
    for header in ('"hello" via ONNX Runtime', "what it learned (shipped file)"):
        rows = table_with(header)
        key = next(iter(rows[0]))  # the first column names the model
        for row in rows:
            assert int(row["parameters"].replace(",", "")) == MANIFEST[row[key]]["params"], row[key]
