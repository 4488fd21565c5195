"""The notebooks in notebooks/ run top to bottom with nbclient (kernel python3, working folder notebooks/);
a cell that raises fails the test. They are committed clean: no outputs, no execution counts."""

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ["quickstart.ipynb", "fine_tuning.ipynb", "deployment.ipynb"]
CELL_TIMEOUT_S = 600  # per cell; a whole notebook takes 1-3 minutes on two CPU cores


def read(name):
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: cell {i} has outputs"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' temporary folders, even when a cell fails
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("TFGPT_OFFLINE", "1")  # the notebooks read ../../shared; never download
    nb = read(name)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    start = time.monotonic()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        pytest.fail(f"{name}: a cell failed\n{e}", pytrace=False)
    print(f"{name}: {time.monotonic() - start:.0f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code"), f"{name}: a cell did not run"
