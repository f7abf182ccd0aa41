"""Pin torch's CPU kernels to one instruction set: a CPU run gives the same bits on any x86 machine.

A seeded torch run is deterministic on one processor but not across processors: MKL, oneDNN and
ATen pick their kernels by what the CPU offers (AVX2, AVX-512; Intel or AMD), and each sums in its
own order. The last bits of the weights differ, training amplifies them, and the committed
`dvc.lock` no longer matches. Pinning all three to their AVX2 paths, the newest set every x86-64
machine of the last decade has, makes the smoke pipeline's training stages reproduce bit for bit.
On an AVX2 machine the pinned kernels are the ones torch would pick anyway (same bits, same speed).

The `mmlib` command pins before anything imports torch, and its children (papermill kernels, the
worker pools) inherit the settings. A variable the user has already set wins; `MMLIB_NATIVE_CPU=1`
turns the pin off. GPU kernels are untouched.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

# MKL's conditional numerical reproducibility, with the thread count it requires held fixed
# (MKL_DYNAMIC would drop threads where it counts fewer physical cores); oneDNN's ISA cap;
# ATen's vectorised kernels.
PINS = {
    "MKL_CBWR": "AVX2,STRICT",
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
}


def has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this is an x86-64 Linux machine whose CPU reports AVX2."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with cpuinfo.open() as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


def pin_cpu_kernels(env: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    """Set the pins in `env` (default: this process) where they apply; returns what was set.

    Must run before torch is imported: MKL and ATen read the variables once, at first use.
    """
    if env.get("MMLIB_NATIVE_CPU") == "1" or not has_avx2():
        return {}
    added = {k: v for k, v in PINS.items() if k not in env}
    env.update(added)
    return added


def setting() -> str:
    """The pin variables as this process has them: part of a resume checkpoint's fingerprint,
    so a finished run made under other kernels is trained again, not reused."""
    return json.dumps({k: os.environ.get(k) for k in sorted(PINS)})
