"""What `mmlib notebook` prints: the cells' own output, none of papermill's or the kernel's noise,
no SIGINT sent into the kernel when it is shut down, and a user's mistake in a cell as one line
(a bug keeps its traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmlib.errors import UsageError
from mmlib.notebooks import _check_kernel, run_notebook

ROOT = Path(__file__).resolve().parents[1]
HEADER = (
    "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: mmlib\n"
    "#     language: python\n#     name: mmlib\n# ---\n\n"
)


def _has_kernel(name: str) -> bool:
    try:
        _check_kernel(name)
    except UsageError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _has_kernel("mmlib"), reason="no `mmlib` Jupyter kernel")


def _notebook(path: Path, body: str) -> Path:
    """A percent notebook of two cells: `parameters` (`marker`; prints "first cell"), `body`."""
    cells = '# %% tags=["parameters"]\nmarker = ""\nprint("first cell")\n\n# %%\n'
    path.write_text(HEADER + cells + body)
    return path


def _run(tmp_path: Path, body: str) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """`mmlib notebook` on a notebook of `body` in a subprocess: (notebook, output, result)."""
    notebook, out = _notebook(tmp_path / "nb.py", body), tmp_path / "out.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "mmlib", "notebook", str(notebook), str(out), "-k", "mmlib",
         "--cwd", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return notebook, out, done


def test_the_log_is_the_cells_output(tmp_path):
    _, out, done = _run(tmp_path, 'print("frames: 123")\n')
    assert done.returncode == 0, done.stderr
    log = done.stdout + done.stderr
    assert "frames: 123" in log  # papermill's --log-output still shows what the cells print
    for noise in (
        "Notebook will not be saved",
        "Input Notebook",
        "Executing Cell",
        "Ending Cell",
        "without encryption",  # ipykernel's warning for TCP transport
        "KeyboardInterrupt",
    ):
        assert noise not in log, noise
    assert out.is_file()


def test_the_kernel_gets_no_sigint_at_shutdown(tmp_path):
    # the cell keeps a SIGINT handler installed past its own execution; jupyter_client's default
    # shutdown would trigger it (that is the "KeyboardInterrupt caught in kernel" ERROR)
    marker = tmp_path / "sigint"
    body = (
        "import pathlib, signal\n"
        "kernel = get_ipython().kernel\n"
        "kernel.pre_handler_hook = kernel.post_handler_hook = lambda: None\n"
        "signal.signal(signal.SIGINT, lambda *_: pathlib.Path(marker).write_text('SIGINT'))\n"
    )
    nb = _notebook(tmp_path / "nb.py", body)
    run_notebook(nb, tmp_path / "out.ipynb", {"marker": str(marker)}, cwd=tmp_path)
    assert (tmp_path / "out.ipynb").is_file()
    assert not marker.exists()


def test_a_usage_error_in_a_notebook_cell_is_one_line(tmp_path):
    body = 'from mmlib.errors import UsageError\nraise UsageError("no games for mewtwo")\n'
    notebook, out, done = _run(tmp_path, body)
    assert done.returncode == 2 and not out.exists()
    # papermill's --log-output puts the cells' own output on stderr before the error line
    assert done.stderr.splitlines()[-1] == (
        f"mmlib notebook: {notebook} failed in cell 2: UsageError: no games for mewtwo"
    )
    assert "Traceback" not in done.stderr and "first cell" in done.stderr


def test_a_bad_replay_in_a_notebook_cell_is_one_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a replay\n")
    body = (
        f"from mmlib.features.replay_console import ReplayConsole\nReplayConsole({str(text)!r})\n"
    )
    notebook, out, done = _run(tmp_path, body)
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.splitlines()[-1].startswith(
        f"mmlib notebook: {notebook} failed in cell 2: ReplayError: {text}: "
        "not a readable Slippi replay: it does not start with a Slippi header; libmelee: "
    )
    assert "Traceback" not in done.stderr


def test_a_bug_in_a_notebook_cell_keeps_its_traceback(tmp_path):
    notebook, out, done = _run(tmp_path, "x = {}\nx['missing']\n")
    assert done.returncode == 2 and not out.exists()
    lines = done.stderr.splitlines()
    assert lines[-1] == f"mmlib notebook: {notebook} failed in cell 2: KeyError: 'missing'"
    assert "Traceback" in done.stderr and "----> 2 x['missing']" in done.stderr
