"""The CPU-kernel pin: where it applies, what it leaves alone, and that a notebook run sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmlib import cpu_kernels
from mmlib.cpu_kernels import PINS, has_avx2, pin_cpu_kernels

ROOT = Path(__file__).resolve().parents[1]
X86 = cpu_kernels.platform.machine().lower() in ("x86_64", "amd64")


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n")
    return path


@pytest.mark.skipif(not X86, reason="the pin is for x86-64")
def test_has_avx2_reads_the_cpu_flags(tmp_path):
    assert has_avx2(_cpuinfo(tmp_path, "avx avx2 fma"))
    assert not has_avx2(_cpuinfo(tmp_path, "avx fma"))
    assert not has_avx2(tmp_path / "missing")


def test_no_pin_off_x86(monkeypatch):
    monkeypatch.setattr(cpu_kernels.platform, "machine", lambda: "aarch64")
    env: dict[str, str] = {}
    assert pin_cpu_kernels(env) == {} and env == {}


@pytest.mark.skipif(not has_avx2(), reason="needs an AVX2 machine")
def test_pin_sets_what_is_unset_and_keeps_the_users_choice():
    env = {"MKL_CBWR": "COMPATIBLE", "PATH": "/bin"}
    added = pin_cpu_kernels(env)
    assert env["MKL_CBWR"] == "COMPATIBLE"  # the user's setting wins
    assert added == {k: v for k, v in PINS.items() if k != "MKL_CBWR"}
    assert {k: env[k] for k in added} == added
    native = {"MMLIB_NATIVE_CPU": "1"}
    assert pin_cpu_kernels(native) == {} and native == {"MMLIB_NATIVE_CPU": "1"}


@pytest.mark.skipif(not has_avx2(), reason="needs an AVX2 machine")
def test_a_notebook_run_by_mmlib_trains_under_the_pin(tmp_path):
    """`mmlib notebook`, as every DVC stage runs it: the kernel inherits the pin, and torch's
    dispatcher reports the pinned instruction set."""
    notebook = tmp_path / "probe.py"
    record = tmp_path / "seen.json"
    notebook.write_text(
        "# %%\nimport json, os, torch\n"
        f"keys = {sorted(PINS)!r}\n"
        "seen = {k: os.environ.get(k) for k in keys}\n"
        "seen['capability'] = torch.backends.cpu.get_cpu_capability()\n"
        f"open({str(record)!r}, 'w').write(json.dumps(seen))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in PINS and k != "MMLIB_NATIVE_CPU"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        [sys.executable, "-m", "mmlib", "notebook", str(notebook), str(tmp_path / "probe.ipynb")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(record.read_text())
    assert seen.pop("capability") == "AVX2"
    assert seen == PINS


def test_a_resume_checkpoint_made_under_other_kernels_is_not_reused(fox_shards, monkeypatch):
    from mmlib.models.config import preset
    from mmlib.train.config import TrainConfig
    from mmlib.train.loop import fingerprint

    cfg, model = TrainConfig(preset="tiny"), preset("tiny")
    for k, v in PINS.items():
        monkeypatch.setenv(k, v)
    pinned = fingerprint(cfg, model, fox_shards)
    assert fingerprint(cfg, model, fox_shards) == pinned
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    assert fingerprint(cfg, model, fox_shards) != pinned
