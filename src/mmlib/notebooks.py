"""Run a percent-format notebook headless: jupytext reads it, papermill executes it.

The executed notebook is a pipeline output, so it must be a function of its inputs: the timings
and timestamps papermill and nbclient record, and the random cell ids jupytext assigns, are
removed or made stable before it is written (atomically).

The run's log is the cells' own output (papermill's --log-output) and nothing a reader cannot act
on: papermill's banners are filtered out, and the kernel runs over IPC and is shut down without
jupyter_client's SIGINT (see `QuietKernelManager`).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import yaml
from jupyter_client.manager import AsyncKernelManager

from mmlib.atomic import write_text
from mmlib.errors import UsageError

_TIMING_KEYS = ("start_time", "end_time", "duration")
# A progress bar's redraw: tqdm writes "\r" and the bar to stderr. Its rate, and how many redraws
# a run makes, depend on timing, so redraws are shown live in the log but never stored.
_REDRAW = re.compile(r"\r[^\r\n]*")
# papermill's INFO lines that carry no information here (input and output are the command's own
# arguments; "will not be saved" is false: mmlib writes the notebook itself)
_BANNERS = (
    "Input Notebook:",
    "Output Notebook:",
    "Working directory:",
    "Executing notebook with kernel:",
    "Executing Cell",
    "Ending Cell",
)


class _DropBanners(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_BANNERS)


class QuietKernelManager(AsyncKernelManager):
    """The kernel manager papermill runs our notebooks with.

    - IPC transport: the kernel's sockets are files in Jupyter's runtime folder, not open TCP
      ports (ipykernel warns on every start about plain-text TCP).
    - No SIGINT at shutdown: jupyter_client interrupts a kernel before asking it to shut down;
      after the last cell the kernel is done, and the signal only races with its exit (ipykernel
      then logs "KeyboardInterrupt caught in kernel" as an ERROR).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)

    async def _async_interrupt_kernel(self) -> None:
        if not self.shutting_down:  # a user's interrupt still interrupts
            await super()._async_interrupt_kernel()


def make_stable(nb) -> None:
    """Drop run timings and progress bars from a notebook and number its cells (in place)."""
    for key in _TIMING_KEYS:
        nb.metadata.get("papermill", {}).pop(key, None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
        cell.metadata.pop("execution", None)  # nbclient's per-cell timestamps
        for key in _TIMING_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)
        if "outputs" in cell:
            cell.outputs = [o for o in map(_without_redraws, cell.outputs) if o is not None]


def _without_redraws(output):
    """A stderr stream without its progress-bar redraws; None when nothing else was in it."""
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return output
    text = _REDRAW.sub("", output.text)
    if text.strip() == "" and text != output.text:
        return None
    output.text = text
    return output


def _check_kernel(kernel: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise UsageError(
            f"no Jupyter kernel named {kernel!r}: run `make venv`, or "
            f"`python -m ipykernel install --sys-prefix --name {kernel}` in mmlib's environment"
        ) from None


def _usage_error_names() -> set[str]:
    """The class names of `UsageError` and its subclasses: a failing cell's exception reaches
    papermill as a name (`ename`) only."""
    import mmlib.config  # noqa: F401 - defines ConfigError (the others are in mmlib.errors)

    names, todo = set(), [UsageError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


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
    papermill_log = logging.getLogger("papermill")
    if not any(isinstance(f, _DropBanners) for f in papermill_log.filters):
        papermill_log.addFilter(_DropBanners())
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
            kernel_manager_class=QuietKernelManager,
        )
    except papermill.PapermillExecutionError as e:
        if e.ename not in _usage_error_names():  # a bug: show where (a user's mistake is one line)
            print(e, file=sys.stderr)  # the cell's traceback
        evalue = " ".join(str(e.evalue).split())
        raise UsageError(f"{notebook} failed in cell {e.exec_count}: {e.ename}: {evalue}") from None
    if nb.metadata.papermill.get("exception"):  # a cell ended the kernel (`sys.exit(0)`) early
        ran = sum(c.get("execution_count") is not None for c in nb.cells if c.cell_type == "code")
        raise UsageError(f"{notebook} stopped after {ran} code cells without finishing")
    nb.metadata.papermill["input_path"] = str(notebook)
    nb.metadata.papermill["output_path"] = str(output)
    make_stable(nb)
    write_text(output, nbformat.writes(nb) + "\n")
