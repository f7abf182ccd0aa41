"""`mmlib evaluate bc` on the shared games: the fox smoke policy scored on the session ingest,
skipping the games it trained on, with the same rows as its shards' validation split; and the
mistakes a user can make, each one line and exit status 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import needs_replays, replay_path

from mmlib.cli import main
from mmlib.data.ingest import IngestConfig, ingest
from mmlib.features.split import perspectives
from mmlib.train import evaluate, held_out, intervals

pytestmark = needs_replays
VERDICTS = {"beats", "tie", "loses", intervals.TOO_FEW}  # the session ingest: a few held-out games


def _manifest(fox_shards: Path) -> dict:
    return json.loads((fox_shards / "manifest.json").read_text())


def _policy_copy(fox_policy: Path, tmp_path: Path, **metadata) -> Path:
    """A copy of the fox policy with metadata.json keys replaced (None: removed)."""
    out = tmp_path / "policy"
    shutil.copytree(fox_policy, out)
    meta = json.loads((out / "metadata.json").read_text()) | metadata
    meta = {k: v for k, v in meta.items() if v is not None}
    (out / "metadata.json").write_text(json.dumps(meta))
    return out


def _in_range(figure: dict, lo: float = 0.0, hi: float = 1.0) -> None:
    assert lo <= figure["lo"] <= figure["value"] <= figure["hi"] <= hi, figure


def test_a_policy_records_the_games_it_trained_on(fox_policy, fox_shards):
    meta = json.loads((fox_policy / "metadata.json").read_text())
    assert meta["train_md5s"] == sorted(_manifest(fox_shards)["split"]["train_md5s"])
    assert meta["games_trained"] == len(meta["train_md5s"])


def test_evaluate_bc_scores_the_held_out_games(fox_policy, fox_shards, ingested, tmp_path, capsys):
    out = tmp_path / "report" / "fox.json"
    argv = ["evaluate", "bc", "--policy", str(fox_policy), "--ingest", str(ingested)]
    assert main([*argv, "--out", str(out), "--boot", "300", "-q"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    split = _manifest(fox_shards)["split"]
    # fox's complete games are split into train and val; the quit-ended ones only train
    assert report["games"] == split["val_md5s"]
    assert report["train_md5s_known"] and report["skipped_trained"]["games"] >= 1
    assert not set(report["games"]) & set(split["train_md5s"])
    assert report["character"] == "fox" and report["window"] == 180
    assert report["n_games"] == len(report["games"]) and report["n_frames"] > 0
    assert report["yardsticks_fitted_on"] == "the scored games (no shards given)"
    assert set(report["heads"]) == set(evaluate.HEAD_NAMES)
    for head in report["heads"].values():
        for key in ("acc", "copy_last_acc", "change_acc", "false_change"):
            _in_range(head[key])
        for key in ("loss", "copy_last_loss", "frequency_loss"):
            _in_range(head[key], 0.0, 20.0)
        _in_range(head["acc_vs_copy_last"], -1.0, 1.0)
        assert head["acc_vs_copy_last"]["verdict"] in VERDICTS
        assert head["loss_vs_copy_last"]["verdict"] in VERDICTS
        assert head["change_frames"] + head["held_frames"] == report["n_frames"]
    assert report["total"]["loss_vs_copy_last"]["verdict"] in VERDICTS
    assert 0 < report["p_stay"]["main"] < 1
    lines = printed.splitlines()
    assert lines[0].startswith(f"fox policy {fox_policy} on {ingested}: 1 held-out games")
    assert f"{report['skipped_trained']['games']} trained-on games skipped" in lines[0]
    assert lines[1].startswith("| head | acc % |") and lines[-1] == f"-> {out}"


def test_held_out_rows_are_the_shards_validation_rows(fox_policy, fox_shards, ingested):
    """Built from the ingest with the policy's normalisation, the held-out rows are the ones the
    shards stage wrote for validation: the same figures, to the bit."""
    from mmlib.checkpoint.directory import load_policy

    report = held_out.evaluate_policy(fox_policy, ingested, fox_shards, n_boot=100, device="cpu")
    assert report["yardsticks_fitted_on"] == f"training split {fox_shards}"
    policy = load_policy(fox_policy)
    window = policy.config.max_seq_len
    counts = intervals.score(policy.model, intervals.split_perspectives(fox_shards, window), 128,
                             "cpu")  # fmt: skip
    yard = intervals.train_yardsticks(fox_shards / "train")
    assert intervals.summary(counts, yard, n_boot=100).items() <= report.items()


def test_a_policy_without_train_md5s_skips_nothing(fox_policy, fox_shards, ingested, tmp_path):
    old = _policy_copy(fox_policy, tmp_path, train_md5s=None)
    report = held_out.evaluate_policy(old, ingested, n_boot=50, device="cpu")
    assert not report["train_md5s_known"] and report["skipped_trained"]["games"] == 0
    assert report["n_games"] > 1  # the training games are scored too
    assert "no train_md5s in the policy's metadata: no game skipped" in held_out.headline(report)


def test_evaluate_bc_mistakes_are_one_line(fox_policy, ingested, tmp_path, capsys):
    def error(*args: str) -> str:
        assert main(["evaluate", "bc", *args, "-q"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err.strip()

    assert error("--policy", str(tmp_path / "none"), "--ingest", str(ingested)) == (
        f"mmlib evaluate bc: no policy directory at {tmp_path / 'none'}"
    )
    assert error("--policy", str(fox_policy), "--ingest", str(tmp_path)) == (
        f"mmlib evaluate bc: no ingest at {tmp_path} (games.parquet); run `mmlib ingest`"
    )
    no_fox = tmp_path / "ingest"  # Captain Falcon vs Peach only
    ingest([replay_path("peppi-console_name.slp")], no_fox, IngestConfig(workers=1), False)
    assert error("--policy", str(fox_policy), "--ingest", str(no_fox)) == (
        f"mmlib evaluate bc: no usable 1v1 game in {no_fox} has fox as a human player"
    )
    md5s = sorted(pq.read_table(ingested / "games.parquet")["md5"].to_pylist())
    seen_all = _policy_copy(fox_policy, tmp_path, train_md5s=md5s)
    n = len({v.md5 for v in perspectives(pq.read_table(ingested / "games.parquet"), "fox")})
    assert error("--policy", str(seen_all), "--ingest", str(ingested)) == (
        f"mmlib evaluate bc: all {n} usable 1v1 games in {ingested} with fox as a human player "
        "were trained on; none held out"
    )
    pikachu = tmp_path / "pikachu"
    shutil.copytree(_policy_copy(fox_policy, tmp_path / "p", character="pikachu"), pikachu)
    assert error("--policy", str(pikachu), "--ingest", str(ingested)) == (
        f"mmlib evaluate bc: no usable 1v1 game in {ingested} has pikachu as a human player"
    )


@pytest.mark.parametrize("flag", ["--policy", "--ingest"])
def test_evaluate_bc_needs_a_policy_and_an_ingest(flag, capsys):
    argv = ["evaluate", "bc", "--policy", "p", "--ingest", "i"]
    i = argv.index(flag)
    with pytest.raises(SystemExit) as e:
        main(argv[:i] + argv[i + 2 :])
    assert e.value.code == 2 and flag in capsys.readouterr().err
