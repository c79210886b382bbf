"""The notebooks stay thin (docs/CONTRIBUTING.md): rules checked on the committed ``notebooks/*.ipynb``.

* a markdown header first; exactly one code cell tagged ``parameters``, holding only typed, commented
  assignments of literals (papermill injects ``make paper``'s values after it);
* no ``def``, ``class``, ``for``, ``while``, ``lambda`` or comprehension anywhere: logic lives in the package;
  imports only from ``ibmdn`` and ``IPython.display``;
* every path a notebook writes to is built from a parameter (an f-string starting with ``{results_dir}``,
  ``{figures_dir}`` or ``{runs_dir}``), and no other string literal looks like a path;
* the stored outputs exist (nbval compares them), contain no error and no stream (stdout / stderr text is
  where non-deterministic noise comes from), and every ``# NBVAL_IGNORE_OUTPUT`` is one nbval recognises
  (alone on its line) with its reason in the comment below;
* ``make paper`` runs every notebook, and nothing else (the Makefile's ``PAPER_NOTEBOOKS``).

Executing the notebooks (and comparing their outputs) is nbval's job in ``make test``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from nbval.plugin import find_comment_markers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OUTPUT_DIRS = ("results_dir", "figures_dir", "runs_dir")
FORBIDDEN = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For, ast.AsyncFor, ast.While, ast.Lambda,
             ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
ALLOWED_IMPORTS = ("ibmdn", "IPython.display")
PATHLIKE = re.compile(r"/|\.(csv|png|json|npz|pth|pt|ipynb)$")
LITERAL_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _parameter_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]


def _parameters(nb: dict) -> dict[str, object]:
    tree = ast.parse(_source(_parameter_cells(nb)[0]))
    return {s.target.id: ast.literal_eval(s.value) for s in tree.body}


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    expected = {f"table{i}" for i in range(1, 7)} | {"param_audit", "figures"}
    assert expected <= names, f"missing notebooks: {sorted(expected - names)}"
    assert any(n.startswith("walkthrough_") for n in names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_and_parameters(path):
    nb = _load(path)
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and _source(first).startswith("# "), "first cell: a markdown '# ' header"
    params = _parameter_cells(nb)
    assert len(params) == 1, f"exactly one cell tagged 'parameters', found {len(params)}"
    cell = params[0]
    assert cell["cell_type"] == "code"
    assert _code_cells(nb)[0] is cell, "the parameters cell is the first code cell"
    src = _source(cell)
    tree = ast.parse(src)
    assert tree.body, "the parameters cell is empty"
    for stmt in tree.body:
        assert isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name), (
            f"line {stmt.lineno}: parameters are typed assignments `name: type = value`")
        assert isinstance(stmt.annotation, ast.Name) and stmt.annotation.id in LITERAL_TYPES, (
            f"{stmt.target.id}: annotate with one of {sorted(LITERAL_TYPES)}")
        value = ast.literal_eval(stmt.value)
        assert isinstance(value, LITERAL_TYPES[stmt.annotation.id]), f"{stmt.target.id}: value does not match its type"
    for line in src.splitlines():
        if line.strip():
            assert "  # " in line, f"every parameter carries a comment (papermill --help-notebook): {line!r}"
    names = {s.target.id for s in tree.body}
    assert {"results_dir", "figures_dir"} <= names, "outputs go to parameterised folders"
    if "profile" in names:
        assert _parameters(nb)["profile"] == "shipped", "by default a notebook shows the shipped weights, trains nothing"
    if "train" in names:
        assert _parameters(nb)["train"] is False, "by default a study notebook renders the committed records"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_logic_in_notebooks(path):
    nb = _load(path)
    for i, cell in enumerate(_code_cells(nb)):
        tree = ast.parse(_source(cell))
        for node in ast.walk(tree):
            assert not isinstance(node, FORBIDDEN), (
                f"code cell {i}: {type(node).__name__} in a notebook; move the logic into ibmdn")
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            for m in mods:
                assert m.startswith(ALLOWED_IMPORTS), f"code cell {i}: import {m} (only ibmdn and IPython.display)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_go_to_parameterised_paths(path):
    nb = _load(path)
    params = set(_parameters(nb))
    outputs = params & set(OUTPUT_DIRS)
    for i, cell in enumerate(_code_cells(nb)):
        if cell in _parameter_cells(nb):
            continue
        tree = ast.parse(_source(cell))
        in_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                head = node.values[0]
                assert isinstance(head, ast.FormattedValue) and isinstance(head.value, ast.Name) and (
                    head.value.id in outputs), (
                    f"code cell {i}: an f-string path must start with one of {sorted(outputs)}: "
                    f"{ast.unparse(node)}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstring:
                assert not PATHLIKE.search(node.value), f"code cell {i}: literal path {node.value!r}; use a parameter"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs(path):
    nb = _load(path)
    for i, cell in enumerate(_code_cells(nb)):
        src = _source(cell)
        assert cell.get("execution_count") is not None, (
            f"code cell {i} has no stored output: run `make notebooks` (nbval compares the stored outputs)")
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"code cell {i} stored an error: {out.get('evalue')}"
            assert out["output_type"] != "stream", (
                f"code cell {i} prints to {out.get('name')}: {''.join(out.get('text', ''))[:200]!r}")
        lines = [ln.strip() for ln in src.splitlines()]
        for j, line in enumerate(lines):
            if "NBVAL_" in line:
                # nbval only honours a comment that is exactly the marker (no text after it on the line)
                assert line == "# NBVAL_IGNORE_OUTPUT", f"code cell {i}: nbval would not see {line!r}"
                assert dict(find_comment_markers(src)).get("check") is False, f"code cell {i}: marker not seen"
                nxt = lines[j + 1] if j + 1 < len(lines) else ""
                assert nxt.startswith("#") and len(nxt) > 10, (
                    f"code cell {i}: say why its output is not compared, in a comment under the marker")


def test_make_paper_runs_every_notebook():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    m = re.search(r"^PAPER_NOTEBOOKS :=((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert m, "Makefile: PAPER_NOTEBOOKS not found"
    listed = m.group(1).replace("\\\n", " ").split()
    assert sorted(listed) == sorted(p.stem for p in NOTEBOOKS), "make paper must run every notebook, once"
    assert listed.index("param_audit") < listed.index("figures") and listed.index("table6") < listed.index("figures")
    assert "--nbval" in text and (ROOT / "tests" / "nbval_sanitize.cfg").is_file()
