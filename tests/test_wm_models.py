"""World models: the published parameter counts, the Mamba-2 recurrence against its own full
pass, the rollout reconstruction, and training that resumes exactly and checkpoints that load
alone (or fail in one line)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import free_port, kill_once_written, needs_replays

from mmlib.errors import UsageError
from mmlib.worldmodel import data, evaluate, models, rollout, train
from mmlib.worldmodel.config import ModelConfig, TrainConfig
from mmlib.worldmodel.encoding import SCALE, EncodingConfig


def _count(**kwargs) -> int:
    return models.n_params(models.build(ModelConfig.from_dict(kwargs)))


V1_STATE = {"version": "v1", "contract": "state"}
V2_STATE = {"version": "v2", "contract": "state"}
V22 = {"version": "v2.1", "contract": "input"}
V22_1A = V22 | {"state_age_embed": True}


@pytest.mark.parametrize(
    "kwargs, published",
    [  # SPEC 6.3.1-6.3.2, each measured on the published code
        ({"arch": "mlp", "encoding": V1_STATE, "heads": "original"}, 931_422),
        ({"arch": "mlp", "encoding": V2_STATE, "heads": "original"}, 1_116_138),
        ({"arch": "mlp", "encoding": V22, "heads": "original"}, 1_304_182),
        ({"arch": "mlp", "encoding": V22}, 1_360_722),
        ({"arch": "mlp", "encoding": V22_1A}, 1_433_602),
        ({"arch": "mamba2", "encoding": V22_1A, "heads": "original"}, 1_150_038),
        ({"arch": "mamba2", "encoding": V22_1A, "d_model": 384, "n_layers": 4}, 4_282_386),
    ],
)  # fmt: skip
def test_parameter_counts_match_the_published_models(kwargs, published):
    assert _count(**kwargs) == published


def test_the_default_mlp_on_v2_is_about_1_1m():
    assert 1.05e6 < _count(arch="mlp") < 1.2e6


def _random_clip(cfg: EncodingConfig, b: int, c: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    floats = torch.rand(b, c, 2, len(cfg.floats), generator=g)
    ints = torch.randint(0, 3, (b, c, 2, len(cfg.ints)), generator=g)
    stage = torch.randint(0, 33, (b,), generator=g)
    return floats, ints, stage


def test_mamba2_seed_then_step_equals_the_full_pass():
    """Seeding the state cache with K frames and stepping frame by frame predicts what one
    chunked pass over the whole clip predicts (float32, <= 1e-4)."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mamba2", d_model=64, n_layers=2, chunk=8)
    model = models.build(cfg).eval()
    enc = cfg.encoding
    floats, ints, stage = _random_clip(enc, 3, 25)
    ctrl = floats[:, 1:, :, enc.ctrl_slice].flatten(-2)
    with torch.inference_mode():
        full = model(floats[:, :24], ints[:, :24], stage, ctrl)
        state = model.seed(floats[:, :10], ints[:, :10], stage)
        stepped = [model.predict(state, ctrl[:, 9])]
        for t in range(10, 24):
            state = model.step(state, floats[:, t], ints[:, t])
            stepped.append(model.predict(state, ctrl[:, t]))
    for name in full:
        got = torch.stack([s[name] for s in stepped], 1)
        assert (got - full[name][:, 9:]).abs().max() <= 1e-4, name


def test_the_mlp_steps_its_window_as_the_recurrent_interface_says():
    """seed/step/predict on the MLP re-runs the last K frames: the same as a forward pass on
    that window, so rollouts treat both architectures alike."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", hidden=64, trunk=32)
    model = models.build(cfg).eval()
    enc, k = cfg.encoding, cfg.encoding.context
    floats, ints, stage = _random_clip(enc, 3, k + 4)
    ctrl = floats[:, 1:, :, enc.ctrl_slice].flatten(-2)
    assert not model.every_position and models.build(TINY["mamba2"]).every_position
    with torch.inference_mode():
        state = model.seed(floats[:, :k], ints[:, :k], stage)
        for t in range(k, k + 3):
            state = model.step(state, floats[:, t], ints[:, t])
        got = model.predict(state, ctrl[:, k + 2])
        want = model(floats[:, 3 : k + 3], ints[:, 3 : k + 3], stage, ctrl[:, k + 2][:, None])
    for name in want:
        assert torch.equal(got[name], want[name][:, 0]), name


def test_advance_applies_deltas_heads_clamps_and_the_state_age_rule():
    enc = EncodingConfig(version="v2")
    f = torch.zeros(1, 2, len(enc.floats))
    i = torch.zeros(1, 2, len(enc.ints), dtype=torch.long)
    f[0, :, enc.fi("x")] = 299 * SCALE["x"]
    f[0, :, enc.fi("state_age")] = 0.05
    i[0, :, enc.ii("action")] = 14
    out = {name: torch.zeros(1, size) for name, size in ModelConfig().head_sizes().items()}
    out["continuous"][0, 1] = 5 * SCALE["x"]  # p0 moves 5 units right: past the 300 clamp
    out["continuous"][0, 4] = 3 * SCALE["percent"]  # p1 takes 3 %
    out["binary"][0, :] = torch.tensor([1.0, -1, 1, -1, -1, -1])
    out["action"][0, 14] = 9  # p0 keeps STANDING (14)
    out["action"][0, 400 + 20] = 9  # p1 changes action
    ctrl = torch.full((1, 2, 13), 0.5)
    nf, ni = rollout.advance(enc, f, i, out, ctrl)
    assert nf[0, 0, enc.fi("x")] == pytest.approx(300 * SCALE["x"])  # clamped
    assert nf[0, 1, enc.fi("percent")] == pytest.approx(3 * SCALE["percent"])
    assert nf[0, 0, enc.fi("facing")] == 1 and nf[0, 0, enc.fi("invulnerable")] == 0
    assert ni[0, :, enc.ii("action")].tolist() == [14, 20]
    assert nf[0, 0, enc.fi("state_age")] == pytest.approx(0.06)  # held: +1 frame
    assert nf[0, 1, enc.fi("state_age")] == 0  # changed: restarts
    assert torch.equal(nf[0, :, enc.ctrl_slice], ctrl[0])


@pytest.fixture(scope="module")
def small_split(ingested):
    return data.split(ingested, EncodingConfig(), 0.25, 4)


TINY = {
    "mlp": ModelConfig(arch="mlp", hidden=64, trunk=32),
    "mamba2": ModelConfig(arch="mamba2", d_model=32, n_layers=1, headdim=16, chunk=10),
}


_CHILD = """
import json, sys
from pathlib import Path
from mmlib.worldmodel import data, train
from mmlib.worldmodel.config import ModelConfig, TrainConfig
from mmlib.worldmodel.encoding import EncodingConfig
ingest, model, cfg, run = json.loads(sys.argv[1])
train_frames, val_frames = data.split(Path(ingest), EncodingConfig(), 0.25, 4)
train.train(ModelConfig.from_dict(model), TrainConfig(**cfg), train_frames.game(0), val_frames,
            Path(run), log=lambda _: None)
"""


@pytest.mark.slow
@needs_replays
@pytest.mark.parametrize("arch", ["mlp", "mamba2"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(ingested, small_split, tmp_path, arch):
    """A training process killed with SIGKILL after its first epoch continues, in a new process,
    to the same weights and history as a run never interrupted."""
    train_frames, val_frames = small_split
    train_frames = train_frames.game(0)  # one game keeps this quick
    cfg = TrainConfig(epochs=4, batch=64, clip=20, threads=1)
    whole, done = train.train(
        TINY[arch], cfg, train_frames, val_frames, tmp_path / "a", log=lambda _: None
    )
    assert done.step == 4 * done.epoch_steps and len(done.history.val) == 4
    train_loss = [r["total"] for r in done.history.train]
    assert train_loss[-1] < 0.9 * train_loss[0]  # it learns (one game: validation may not follow)

    run = tmp_path / "b"
    spec = json.dumps([str(ingested), TINY[arch].to_dict(), cfg.to_dict(), str(run)])
    kill_once_written([sys.executable, "-c", _CHILD, spec], run / train.RESUME_FILE)
    saved = torch.load(run / train.RESUME_FILE, weights_only=False)
    assert 0 < saved["step"] < done.step and not saved["finished"]
    lines = []
    resumed, result = train.train(TINY[arch], cfg, train_frames, val_frames, run, log=lines.append)
    assert lines[0].startswith(f"resuming from step {saved['step']}")
    assert result.history.train == done.history.train and result.history.val == done.history.val
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


@needs_replays
def test_a_resume_file_survives_edits_but_not_another_recipe(small_split, tmp_path):
    """The resume fingerprint reads the configs, the data and the format version, not the
    source: the same recipe continues, another learning rate or other games start over."""
    train_frames, val_frames = small_split
    one = train_frames.game(0)
    cfg = TrainConfig(epochs=1, batch=64, clip=20, threads=1)
    key = train.fingerprint(TINY["mlp"], cfg, one, val_frames)
    assert train.fingerprint(TINY["mlp"], cfg, one, val_frames) == key
    assert train.fingerprint(TINY["mlp"], dataclasses.replace(cfg, lr=2e-3), one, val_frames) != key
    assert train.fingerprint(TINY["mlp"], cfg, train_frames.game(1), val_frames) != key
    assert train.fingerprint(TINY["mamba2"], cfg, one, val_frames) != key
    train.train(TINY["mlp"], cfg, one, val_frames, tmp_path, log=lambda _: None)
    lines = []
    train.train(TINY["mlp"], cfg, one, val_frames, tmp_path, log=lines.append)
    assert lines == [f"resuming from step {cfg.epochs * train.steps_per_epoch(one, 10, False, 64)}"
                     f" ({tmp_path / train.RESUME_FILE})"]  # fmt: skip
    train.train(TINY["mlp"], dataclasses.replace(cfg, lr=2e-3), one, val_frames, tmp_path,
                log=lines.append)  # fmt: skip
    assert "starting over" in lines[1]


@needs_replays
def test_a_step_budget_trains_exactly_that_many_steps_in_rounds(small_split, tmp_path):
    """`steps` (matched budgets across architectures) replaces whole epochs: 6 steps in 2
    rounds, whatever an epoch's size; a budget that does not split into rounds fails in a line."""
    train_frames, val_frames = small_split
    cfg = TrainConfig(epochs=2, steps=6, batch=64, clip=20, threads=1)
    _, result = train.train(
        TINY["mlp"], cfg, train_frames.game(0), val_frames, tmp_path, log=lambda _: None
    )
    assert result.step == 6 and [r["step"] for r in result.history.val] == [3, 6]
    assert result.epoch_steps > 6  # an epoch of this game is longer: the budget decided
    with pytest.raises(UsageError, match="multiple of epochs"):
        TrainConfig(epochs=2, steps=7)


@needs_replays
def test_checkpoints_carry_their_config_and_bad_ones_fail_in_one_line(small_split, tmp_path):
    train_frames, val_frames = small_split
    cfg = TrainConfig(epochs=1, batch=64, clip=20, threads=1)
    model, result = train.train(
        TINY["mamba2"], cfg, train_frames.game(0), val_frames, tmp_path, log=lambda _: None
    )
    train.save(tmp_path / "model.pt", model, result, cfg)
    again = train.load(tmp_path / "model.pt")
    assert again.cfg == model.cfg
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"model_state_dict": {}}, tmp_path / "policy.pt")  # a BC checkpoint, say
    for path, message in [
        (tmp_path / "missing.pt", "no world-model checkpoint"),
        (tmp_path / "junk.pt", "not a readable torch checkpoint"),
        (tmp_path / "policy.pt", "not an mmlib world-model checkpoint"),
    ]:
        with pytest.raises(UsageError, match=message):
            train.load(path)


@needs_replays
@pytest.mark.parametrize("arch", ["mlp", "mamba2"])
def test_metrics_and_rollouts_on_real_games(small_split, arch, tmp_path):
    """Teacher-forced metrics cover the same frames for both architectures, and a briefly trained
    model's action accuracy is well above always predicting the commonest action; rollouts keep
    shapes, stay finite and inside the clamps, and the copy-last-frame yardstick is exact at
    step 0."""
    train_frames, val_frames = small_split
    cfg = TrainConfig(epochs=1, batch=64, lr=1e-2, clip=20, threads=1)  # a few seconds
    model, _ = train.train(TINY[arch], cfg, train_frames, val_frames, tmp_path, log=lambda _: None)
    model.eval()
    pred = evaluate.teacher_forced(model, val_frames)
    k = val_frames.cfg.context
    true = pred["tgt"]["action"]
    assert len(true) == val_frames.n_frames - k * len(val_frames.md5s)
    m = evaluate.teacher_forced_metrics(pred)
    majority = np.unique(true, return_counts=True)[1].max() / true.size
    # measured: majority 0.20; action_acc 0.61 (mlp) / 0.56 (mamba2) trained, 0.002 untrained
    assert m["action_acc"] >= 2 * majority, f"action_acc {m['action_acc']}, majority {majority}"
    assert m["copy_last_frame"]["action_acc"] > 0.8  # measured 0.93
    roll, (starts, pred_f, pred_i, errs) = evaluate.rollout_metrics(
        model, val_frames, 8, 0, (1, 10)
    )
    assert pred_f.shape[:3] == (8, 10, 2) and torch.isfinite(pred_f).all()
    x = val_frames.cfg.fi("x")
    assert pred_f[..., x].abs().max() <= 300 * SCALE["x"] + 1e-6
    assert set(roll["model"]) == {"1", "10"}
    assert np.all(errs["copy_last_frame"]["stocks"][:, 0])  # stocks hold over one frame


_DDP_CHILD = """
import json, sys
from pathlib import Path
import torch
from mmlib.worldmodel import data, train
from mmlib.worldmodel.config import ModelConfig, TrainConfig
from mmlib.worldmodel.encoding import EncodingConfig
ingest, model, cfg, run = json.loads(sys.argv[1])
train_frames, val_frames = data.split(Path(ingest), EncodingConfig(), 0.25, 4)
_, result = train.train(ModelConfig.from_dict(model), TrainConfig(**cfg), train_frames.game(0),
                        val_frames, Path(run), log=lambda _: None)
torch.save(result.checkpoint["model"], Path(run) / f"rank{result.rank}.pt")
"""


@pytest.mark.slow
@needs_replays
def test_ddp_on_two_processes_equals_one_process_on_the_union_batch(ingested, small_split,
                                                                    tmp_path):  # fmt: skip
    """A world model under torchrun (gloo, 2 processes, each drawing its own clips) ends with
    the weights of one process that trains on both ranks' clips together."""
    train_frames, val_frames = small_split
    cfg = TrainConfig(epochs=1, batch=32, clip=20, threads=1)
    model_cfg = dataclasses.replace(TINY["mlp"], dropout=0.0)  # the same function on both ranks
    spec = json.dumps([str(ingested), model_cfg.to_dict(), cfg.to_dict(), str(tmp_path)])
    script = tmp_path / "child.py"
    script.write_text(_DDP_CHILD)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script), spec],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k

    task = train.WorldModelTask(model_cfg, cfg, train_frames.game(0), val_frames)
    torch.manual_seed(cfg.seed)
    model = task.build()
    opt, sched = task.optimizer(model)
    streams = [task.batches(rank) for rank in (0, 1)]
    for _ in range(task.epoch_steps):
        clips = [s.next() for s in streams]
        union = tuple(torch.cat(parts) for parts in zip(*clips, strict=True))
        task.loss(model, union)["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad()
        sched.step()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(rank0[k], v, rtol=1e-4, atol=1e-5, msg=k)
