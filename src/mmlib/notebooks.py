"""Run a percent-format notebook headless: jupytext reads it, papermill executes it.

The executed notebook is a pipeline output, so it must be a function of its inputs: the timings
and timestamps papermill and nbclient record, and the random cell ids jupytext assigns, are
removed or made stable before it is written (atomically).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from mmlib.atomic import write_text
from mmlib.errors import UsageError

_TIMING_KEYS = ("start_time", "end_time", "duration")


def make_stable(nb) -> None:
    """Drop run timings from a notebook's metadata and number its cells (in place)."""
    for key in _TIMING_KEYS:
        nb.metadata.get("papermill", {}).pop(key, None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
        cell.metadata.pop("execution", None)  # nbclient's per-cell timestamps
        for key in _TIMING_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)


def _check_kernel(kernel: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise UsageError(
            f"no Jupyter kernel named {kernel!r}: run `make venv`, or "
            f"`python -m ipykernel install --sys-prefix --name {kernel}` in mmlib's environment"
        ) from None


def run_notebook(
    notebook: Path,
    output: Path,
    parameters: dict[str, str],
    kernel: str = "mmlib",
    cwd: Path = Path("."),
) -> None:
    """Execute `notebook` (a jupytext .py) with papermill and write the result to `output`.

    Parameter values are read as YAML, so `-p seed 3` passes an int. A failing cell stops the run,
    prints the cell's traceback and writes nothing to `output`.
    """
    import jupytext
    import nbformat
    import papermill

    if not notebook.is_file():
        raise UsageError(f"no notebook at {notebook}")
    _check_kernel(kernel)
    nb = jupytext.read(notebook)
    params = {name: yaml.safe_load(value) for name, value in parameters.items()}
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        nb = papermill.execute_notebook(
            nb,
            None,
            parameters=params,
            kernel_name=kernel,
            cwd=str(cwd),
            log_output=True,
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as e:
        print(e, file=sys.stderr)  # the cell's traceback
        raise UsageError(
            f"{notebook} failed in cell {e.exec_count}: {e.ename}: {e.evalue}"
        ) from None
    nb.metadata.papermill["input_path"] = str(notebook)
    nb.metadata.papermill["output_path"] = str(output)
    make_stable(nb)
    write_text(output, nbformat.writes(nb) + "\n")
