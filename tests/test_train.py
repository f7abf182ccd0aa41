"""The training loop on fox's real shards: deterministic on CPU, resumable after a real SIGKILL,
and DistributedDataParallel (gloo, 2 processes) equal to one process on the union batch."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import free_port, kill_once_written

from mmlib.features.sampler import WindowSampler
from mmlib.models.bc import BCTransformer, losses
from mmlib.models.config import preset
from mmlib.train import optim
from mmlib.train.config import TrainConfig
from mmlib.train.loop import RESUME_FILE, train

ROOT = Path(__file__).resolve().parents[1]
CFG = TrainConfig(
    preset="tiny", steps=12, batch=8, lr=3e-3, eval_every=4, eval_windows=16, log_every=2,
    ckpt_every=4, patience=0, precision="fp32", threads=1, seed=3,
)  # fmt: skip
MODEL = preset("tiny", dropout=0.1)  # dropout on, so the resumed RNG state matters


def _same_history(a, b) -> None:
    assert a.train == b.train and a.val == b.val
    assert (a.best_loss, a.best_step) == (b.best_loss, b.best_step)


def _same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_train_games_draws_only_from_a_nested_subset_of_training_games(fox_shards):
    """The learning curve's `train_games`: the first n md5s of one fixed shuffle (nested as n
    grows), and the sampler draws windows from those games' rows only."""
    from mmlib.train.loop import training_games, training_md5s

    manifest = json.loads((fox_shards / "manifest.json").read_text())
    md5s = manifest["split"]["train_md5s"]
    assert len(md5s) >= 3
    one, two = training_md5s(manifest, 1), training_md5s(manifest, 2)
    assert len(one) == 1 and set(one) < set(two) and training_md5s(manifest, 0) == md5s
    assert training_games(fox_shards, 0) is None and training_games(fox_shards, 99) is None
    games = training_games(fox_shards, 1)
    offsets = np.load(fox_shards / "train" / "offsets.npy")
    assert [manifest["train"]["games"][g]["md5"] for g in games] == one
    sampler = WindowSampler(fox_shards / "train", 180, games=games)
    starts = sampler.starts_of(np.arange(len(sampler)))
    inside = np.zeros(len(starts), bool)
    for g in games:
        inside |= (starts >= offsets[g]) & (starts + 180 <= offsets[g + 1])
    assert inside.all() and len(starts) == sum(offsets[g + 1] - offsets[g] - 179 for g in games)
    with pytest.raises(Exception, match="train_games"):
        TrainConfig(train_games=-1)


def test_two_runs_with_one_seed_give_the_same_losses(fox_shards, tmp_path):
    a = train(CFG, MODEL, fox_shards, tmp_path / "a", log=lambda _: None)
    b = train(CFG, MODEL, fox_shards, tmp_path / "b", log=lambda _: None)
    _same_history(a.history, b.history)
    _same_state(a.best_state, b.best_state)
    assert len(a.history.train) == CFG.steps // CFG.log_every and len(a.history.val) == 3
    other = train(dataclasses.replace(CFG, seed=4), MODEL, fox_shards, tmp_path / "c", log=print)
    assert other.history.train != a.history.train


def test_a_run_shorter_than_its_intervals_still_records_its_loss(fox_shards, tmp_path):
    """`-S bc.full.steps=4` against the full recipe's log_every 32 and eval_every 327: one
    training record over the 4 steps, and one validation pass at the end."""
    cfg = dataclasses.replace(CFG, steps=3, log_every=2, eval_every=10)
    r = train(cfg, MODEL, fox_shards, tmp_path, log=lambda _: None)
    assert [row["step"] for row in r.history.train] == [2, 3]
    assert [row["step"] for row in r.history.val] == [3] and r.history.best_step == 3
    each = train(dataclasses.replace(cfg, log_every=1), MODEL, fox_shards, tmp_path / "each")
    per_step = [row["total"] for row in each.history.train]  # the same draws, one record a step
    assert r.history.train[0]["total"] == pytest.approx((per_step[0] + per_step[1]) / 2)
    assert r.history.train[1]["total"] == pytest.approx(per_step[2])  # the last: one step's mean


def test_the_loss_falls(fox_shards, tmp_path):
    cfg = dataclasses.replace(CFG, steps=40, eval_every=40)
    r = train(cfg, MODEL, fox_shards, tmp_path, log=lambda _: None)
    assert r.history.train[-1]["total"] < 0.8 * r.history.train[0]["total"]


_CHILD = """
import json, sys
from pathlib import Path
from mmlib.models.config import ModelConfig
from mmlib.train.config import TrainConfig
from mmlib.train.loop import train
cfg, model, data, run = json.loads(sys.argv[1])
cfg["betas"] = tuple(cfg["betas"])
train(TrainConfig(**cfg), ModelConfig(**model), Path(data), Path(run), log=lambda _: None)
"""


def _child_args(cfg, data, run) -> list[str]:
    spec = json.dumps([cfg.to_dict(), MODEL.to_dict(), str(data), str(run)])
    return [sys.executable, "-c", _CHILD, spec]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(fox_shards, tmp_path):
    cfg = dataclasses.replace(CFG, steps=200, batch=32, ckpt_every=5, eval_every=50)
    whole = train(cfg, MODEL, fox_shards, tmp_path / "whole", log=lambda _: None)

    run = tmp_path / "killed"
    kill_once_written(_child_args(cfg, fox_shards, run), run / RESUME_FILE, timeout=120)
    saved = torch.load(run / RESUME_FILE, weights_only=False)
    assert 0 < saved["step"] < cfg.steps and not saved["finished"]

    lines = []
    resumed = train(cfg, MODEL, fox_shards, run, log=lines.append)
    assert lines[0].startswith(f"resuming from step {saved['step']}")
    _same_history(resumed.history, whole.history)
    _same_state(resumed.best_state, whole.best_state)
    _same_state(resumed.checkpoint["model"], whole.checkpoint["model"])
    # a finished run re-run trains nothing and returns the same result
    again = train(cfg, MODEL, fox_shards, run, log=lambda _: None)
    assert again.step == cfg.steps
    _same_history(again.history, whole.history)


def test_a_resume_checkpoint_of_another_recipe_is_not_continued(fox_shards, tmp_path):
    train(CFG, MODEL, fox_shards, tmp_path, log=lambda _: None)
    lines = []
    other = dataclasses.replace(CFG, lr=1e-3)
    r = train(other, MODEL, fox_shards, tmp_path, log=lines.append)
    assert "starting over" in lines[0]
    fresh = train(other, MODEL, fox_shards, tmp_path / "fresh", log=lambda _: None)
    _same_history(r.history, fresh.history)


_DDP_CHILD = """
import json, os, sys
from pathlib import Path
import torch
from mmlib.models.config import ModelConfig
from mmlib.train.config import TrainConfig
from mmlib.train.loop import train
cfg, model, data, run = json.loads(sys.argv[1])
cfg["betas"] = tuple(cfg["betas"])
r = train(TrainConfig(**cfg), ModelConfig(**model), Path(data), Path(run), log=lambda _: None)
torch.save(r.checkpoint["model"], Path(run) / f"rank{r.rank}.pt")
"""


@pytest.mark.slow
def test_ddp_on_two_processes_equals_one_process_on_the_union_batch(fox_shards, tmp_path):
    cfg = dataclasses.replace(CFG, steps=3, batch=4, eval_every=100, ckpt_every=100)
    model_cfg = dataclasses.replace(MODEL, dropout=0.0)  # so both paths see the same function
    spec = json.dumps([cfg.to_dict(), model_cfg.to_dict(), str(fox_shards), str(tmp_path)])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    script = tmp_path / "child.py"
    script.write_text(_DDP_CHILD)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script), spec],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    _same_state(rank0, rank1)
    saved = torch.load(tmp_path / RESUME_FILE, weights_only=False)
    assert saved["world"] == 2 and len(saved["batches"]) == 2 and saved["step"] == cfg.steps

    # the same steps in one process: one model, each step on both ranks' windows together
    torch.manual_seed(cfg.seed)
    model = BCTransformer(model_cfg)
    opt, samplers = optim.optimizer(model, cfg), []
    sched = optim.scheduler(opt, cfg)
    for rank in (0, 1):
        s = WindowSampler(fox_shards / "train", model_cfg.max_seq_len)
        s.rng = np.random.default_rng([cfg.seed, rank])
        samplers.append(s)
    for _ in range(cfg.steps):
        parts = [s.sample(cfg.batch) for s in samplers]
        batch = {k: torch.from_numpy(np.concatenate([p[k] for p in parts])) for k in parts[0]}
        logits, _ = model(batch["ints"], batch["floats"])
        losses(logits, batch["targets"])["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad()
        sched.step()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(rank0[k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_a_plateau_stops_the_run_early(fox_shards, tmp_path):
    cfg = dataclasses.replace(CFG, steps=40, lr=0.0, min_lr=0.0, patience=2)  # nothing improves
    lines = []
    r = train(cfg, MODEL, fox_shards, tmp_path, log=lines.append)
    assert r.history.stopped_early and r.step == 3 * cfg.eval_every
    assert r.history.best_step == cfg.eval_every and r.history.evals_since_best == 2
    assert lines[-1] == "stopping early: 2 passes without a new best"
    assert torch.load(tmp_path / RESUME_FILE, weights_only=False)["finished"]


def test_train_command_errors_are_one_line(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mmlib", "train", *args],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip

    unknown = run("-c", "kirby2", "--shards", str(tmp_path))
    assert unknown.returncode == 2 and unknown.stderr.startswith("mmlib train: unknown character")
    missing = run("-c", "fox", "--shards", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"mmlib train: no shards for fox at {tmp_path / 'none' / 'fox'}: run `dvc repro shards`"
    )
    (tmp_path / "fox").mkdir()
    (tmp_path / "fox" / "manifest.json").write_text("{}")
    typo = run("-c", "fox", "--shards", str(tmp_path), "--set", "stpes", "3")
    assert typo.returncode == 2 and "unknown keys ['stpes']" in typo.stderr
    assert len(typo.stderr.strip().splitlines()) == 1


def test_missing_shards_of_an_unlisted_character_name_the_params_key_to_edit(tmp_path):
    from mmlib.errors import UsageError
    from mmlib.train.character import Paths, run_character

    params = tmp_path / "params.yaml"
    params.write_text(
        "profile: smoke\n"
        "features:\n  smoke: {characters: [falco, fox]}\n  full: {characters: [fox, marth]}\n"
        "bc:\n  characters: [falco, fox, peach]\n"
    )
    paths = Paths(shards=tmp_path / "shards")

    def message(character: str, profile: str | None = None) -> str:
        with pytest.raises(UsageError) as e:
            run_character(character, params, paths, profile=profile)
        return str(e.value)

    missing = f"no shards for mewtwo at {tmp_path / 'shards' / 'mewtwo'}"
    assert message("mewtwo") == (
        f"{missing}: the shards stage builds features.smoke.characters in {params} "
        "(falco, fox); add mewtwo there and to bc.characters, then run `dvc repro shards`"
    )
    assert message("mewtwo", "full") == (
        f"{missing}: the shards stage builds features.full.characters in {params} "
        "(fox, marth); add mewtwo there and to bc.characters, then run `dvc repro shards`"
    )
    assert message("peach").endswith(  # already in bc.characters
        f"features.smoke.characters in {params} (falco, fox); add peach there, "
        "then run `dvc repro shards`"
    )
    # listed but not built yet: the stage builds it
    assert message("fox") == (
        f"no shards for fox at {tmp_path / 'shards' / 'fox'}: run `dvc repro shards`"
    )
    # one list for every profile
    params.write_text("features:\n  characters: [sheik]\nbc:\n  characters: [sheik]\n")
    assert message("mewtwo").endswith(
        f"the shards stage builds features.characters in {params} (sheik); add mewtwo there "
        "and to bc.characters, then run `dvc repro shards`"
    )
    with pytest.raises(UsageError, match="unknown character 'mewtwo2'"):
        run_character("mewtwo2", params, paths)


def test_change_accuracy_counts_only_frames_where_the_human_changes_class():
    from mmlib.train import evaluate

    heads = evaluate.HEAD_NAMES
    true = {h: np.array([[0, 0, 1, 1, 2, 2]]) for h in heads}
    prev = {h: np.array([[0, 0, 0, 1, 1, 2]]) for h in heads}  # changes at frames 2 and 4
    copy = {h: prev[h].copy() for h in heads}
    hits_one = {h: np.array([[0, 0, 1, 1, 1, 2]]) for h in heads}  # right at 2, wrong at 4
    m = evaluate.head_metrics(copy, true, prev)
    assert m["main"]["acc"] == pytest.approx(4 / 6) and m["main"]["change_acc"] == 0.0
    assert m["main"]["change_frames"] == 2
    assert m["main"]["false_change"] == 0.0  # copying never leaves the held class
    m = evaluate.head_metrics(hits_one, true, prev)
    assert m["button"]["change_acc"] == 0.5
    jumpy = {h: np.array([[1, 0, 1, 1, 2, 0]]) for h in heads}  # changes on 2 of 4 held frames
    assert evaluate.head_metrics(jumpy, true, prev)["c"]["false_change"] == 0.5
    assert "change_acc" not in evaluate.head_metrics(copy, true)["c"]
    assert evaluate.head_metrics(true, true, true)["c"]["change_acc"] is None  # no change frame
