"""README.md and docs/*.md state what models/manifest.json records (one source for both), every
measured table says which command, date, commit and machine produced it, and the README stays a
short entry point whose file map names real files."""
import datetime
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((ROOT / "models" / "manifest.json").read_text())["models"]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MACHINES = ("2-core x86-64 CPU (the project's dev/CI machine)", "2-core AMD EPYC x86-64 CPU (the dev/CI machine since",
            "one NVIDIA H100 (lent)")
MEASURED = re.compile(r"> Measured: `[^`]+` · (?P<date>\d{4}-\d\d-\d\d) · (?P<commit>[0-9a-f]{7,40}) · (?P<machine>.+)")
MEASURED_CELL = re.compile(r"\d\s?(%|ms\b|µs\b)")  # a percentage or a time: a figure someone measured
MAX_README_LINES = 200


def table_blocks(text: str) -> list[tuple[int, list[list[str]]]]:
    """Every pipe table in the text as (index of its first line, rows of cells), bold markers dropped."""
    tables, block, lines = [], [], text.splitlines()
    for number, line in enumerate(lines + [""]):
        if line.startswith("|"):
            block.append([cell.strip().replace("**", "") for cell in line.strip().strip("|").split("|")])
            continue
        if len(block) > 2:
            tables.append((number - len(block), block))
        block = []
    return tables


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every pipe table in the text as a list of {header: cell} rows."""
    return [[dict(zip(header, row)) for row in rows] for _, (header, _separator, *rows) in table_blocks(text)]


def tables_with(header: str, path: Path) -> list[list[dict[str, str]]]:
    return [t for t in markdown_tables(path.read_text()) if t and header in t[0]]


def percent(cell: str) -> float:
    match = re.fullmatch(r"(\d+\.\d\d)%", cell)
    assert match, f"not a percentage with two decimals: {cell!r}"
    return float(match.group(1))


def check_image_table(rows: list[dict[str, str]]) -> None:
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


def check_int8_table(rows: list[dict[str, str]]) -> None:
    assert {f"{row['model']}-int8" for row in rows} == {i for i, m in MANIFEST.items() if m.get("precision") == "int8"}
    for row in rows:
        fp32, int8 = (percent(cell) for cell in row["accuracy fp32 → int8"].split(" → "))
        assert fp32 == pytest.approx(MANIFEST[row["model"]]["test_accuracy"] * 100, abs=0.005), row["model"]
        assert int8 == pytest.approx(MANIFEST[f"{row['model']}-int8"]["test_accuracy"] * 100, abs=0.005), row["model"]


def check_parameters(rows: list[dict[str, str]]) -> None:
    key = next(iter(rows[0]))  # the first column names the model
    for row in rows:
        assert int(row["parameters"].replace(",", "")) == MANIFEST[row[key]]["params"], row[key]


MODEL_TABLES = {  # a column only the model tables have -> how such a table is checked against the manifest
    "test accuracy": check_image_table,
    "accuracy fp32 → int8": check_int8_table,
    '"hello" via ONNX Runtime': check_parameters,
    "what it learned (shipped file)": check_parameters,
}


@pytest.mark.parametrize("header", MODEL_TABLES)
def test_readme_model_table_matches_manifest(header):
    tables = tables_with(header, README)
    assert len(tables) == 1, f"README.md should have exactly one table with a {header!r} column"
    MODEL_TABLES[header](tables[0])


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_model_tables_match_manifest(doc):
    for header, check in MODEL_TABLES.items():
        for table in tables_with(header, doc):
            check(table)


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_every_model_a_table_names_is_shipped(doc):
    for table in markdown_tables(doc.read_text()):
        if table and "model" in table[0]:
            named = {row["model"].strip("` ") for row in table}
            assert named <= set(MANIFEST), f"{doc.name}: not in models/manifest.json: {sorted(named - set(MANIFEST))}"


def measured_tables(doc: Path) -> list[int]:
    """First-line indexes of the tables holding measured figures: all of benchmarks.md's, and any
    other table with a percentage or a time in its body."""
    tables = table_blocks(doc.read_text())
    if doc.name == "benchmarks.md":
        return [start for start, _ in tables]
    return [start for start, (_, _, *rows) in tables if any(MEASURED_CELL.search(c) for row in rows for c in row)]


def provenance_line(lines: list[str], table_start: int) -> str | None:
    """The '> Measured:' line between the table and the heading or table before it, if any."""
    for line in reversed(lines[:table_start]):
        if line.startswith(("#", "|")):
            return None
        if line.startswith("> Measured:"):
            return line
    return None


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_measured_tables_name_command_date_commit_machine(doc):
    lines = doc.read_text().splitlines()
    for start in measured_tables(doc):
        line = provenance_line(lines, start)
        assert line, f"{doc.name}:{start + 1}: a measured table needs a '> Measured: `command` · date · commit · machine' line above it"
        match = MEASURED.fullmatch(line)
        assert match, f"{doc.name}:{start + 1}: not '> Measured: `command` · YYYY-MM-DD · commit · machine': {line!r}"
        datetime.date.fromisoformat(match["date"])
        assert match["machine"].startswith(MACHINES), f"{doc.name}:{start + 1}: machine should be one of {MACHINES}"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_no_block_left_out(doc):
    """Two blank lines in a row are where a table or a list was dropped (a move of text between
    files lost two tables that way, leaving their '> Measured:' lines over nothing)."""
    lines = doc.read_text().splitlines()
    doubled = [i + 1 for i in range(1, len(lines)) if not lines[i].strip() and not lines[i - 1].strip()]
    assert not doubled, f"{doc.name}: two blank lines in a row at line(s) {doubled}: a block left out?"


def test_benchmarks_doc_has_measured_tables():
    assert measured_tables(ROOT / "docs" / "benchmarks.md"), "docs/benchmarks.md holds the measured tables"


def test_readme_fits_on_a_few_screens():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {MAX_README_LINES})"


def file_map() -> list[str]:
    """The paths the README's '## Files' section lists, one '- `path`: what it is' line each."""
    section = README.read_text().split("\n## Files\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `([^`]+)`:", section, flags=re.MULTILINE)


def test_readme_file_map_names_real_files():
    paths = file_map()
    assert paths, "README.md should have a '## Files' section of '- `path`: ...' lines"
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"README.md's file map names paths that don't exist: {missing}"


def test_readme_file_map_lists_every_serving_module():
    listed = set(file_map())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "demo").rglob("*")
               if p.suffix in (".py", ".js", ".css") and p.name != "__init__.py" and "__pycache__" not in p.parts}
    assert modules <= listed, f"README.md's file map leaves out: {sorted(modules - listed)}"


def test_docs_links_resolve():
    for doc in [README, *DOCS, ROOT / "CHANGELOG.md"]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to a missing {target}"
