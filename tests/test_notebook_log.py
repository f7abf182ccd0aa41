"""What `mmlib notebook` prints: the cells' own output, none of papermill's or the kernel's noise,
and no SIGINT sent into the kernel when it is shut down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mmlib.notebooks import run_notebook

ROOT = Path(__file__).resolve().parents[1]


HEADER = (
    "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: mmlib\n"
    "#     language: python\n#     name: mmlib\n# ---\n\n"
)


def _notebook(path: Path, body: str) -> Path:
    path.write_text(HEADER + '# %% tags=["parameters"]\nmarker = ""\n\n# %%\n' + body)
    return path


def test_the_log_is_the_cells_output(tmp_path):
    nb = _notebook(tmp_path / "nb.py", 'print("frames: 123")\n')
    done = subprocess.run(
        [sys.executable, "-m", "mmlib", "notebook", str(nb), str(tmp_path / "out.ipynb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
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
    assert (tmp_path / "out.ipynb").is_file()


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
