#!/usr/bin/env bash
# The GPU checks of the training engine (issue 17), for a machine with one CUDA GPU, from the
# repository root, in an environment with a CUDA build of torch and the `cuda` extra
# (`pip install -e ".[cuda]"`: mamba-ssm's fused kernels). About 5 minutes on one H100.
#   1. BC `mimic` preset training throughput: eager fp32, eager bf16, compiled bf16 (windows/s;
#      published: about 2,800/s per RTX 5090)
#   2. world-model medium Mamba-2 training throughput, chunked scan against the fused kernel
#   3. the fused-vs-ours equivalence test (skipped on a machine without CUDA and mamba_ssm)
#   4. a two-epoch world-model run through the engine on the GPU (bf16 autocast, fused scan)
#   5. exact resume on the GPU: the engine's crash-and-resume test with dropout (CUDA generator
#      saved and restored), then the killed-run tests of BC and the world models on the GPU
set -euo pipefail
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch, mamba_ssm; print('torch', torch.__version__, 'mamba_ssm', mamba_ssm.__version__)"
python benchmarks/bc_throughput.py --preset mimic --batch 256 --steps 100
python benchmarks/wm_train_throughput.py --preset mamba2-medium --batch 64 --steps 100
python -m pytest -q -p no:cacheprovider tests/test_wm_mamba2.py -k "fused" -rs
python -m pytest -q -p no:cacheprovider tests/test_wm_models.py -k "killed_run" -m "slow or not slow"
python -m pytest -q -p no:cacheprovider tests/test_engine.py -rs
python -m pytest -q -p no:cacheprovider tests/test_train.py -k "killed_run" -m "slow or not slow"
