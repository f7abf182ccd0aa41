"""Training shards and windows on the real replays (SPEC 3.9, 3.11): the target alignment and its
JUMP-onset leak rate, finite features on every perspective, the md5 split, the manifest against
the arrays, the five metadata files, the window sampler, the `mmlib shards` command.

One norm stage and one shard build (falco, marth; `features` params) per module, plus the same
build with the leaked alignment (`target_shift=0`) to show that the leak check sees it.
"""

from __future__ import annotations

import json
import shutil
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from mmlib.cli import main
from mmlib.config import stage_params
from mmlib.data.ids import PORTS
from mmlib.data.store import read_games
from mmlib.errors import UsageError
from mmlib.features import build, controller, dataset, shards, transforms
from mmlib.features.sampler import ARRAYS, WindowSampler
from mmlib.features.schema import load_schema
from mmlib.features.split import POOLED, Perspective, perspectives, split_md5s

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ROOT / "reports/audit/audit.json"
PARAMS = ROOT / "params.yaml"
CHARS = ["falco", "marth"]
SPLITS = ("train", "val")
BUTTON = shards.TARGET_COLUMNS.index("button")
ACTION = build.INT_COLUMNS.index("self_action")
# The four blocks of the controller one-hot (the last 56 float columns), in TARGET_COLUMNS terms.
BLOCKS = {
    "main": (controller.OFFSETS[0], controller.N_MAIN),
    "c": (controller.OFFSETS[1], controller.N_C),
    "button": (controller.OFFSETS[2], controller.N_BUTTON),
    "shoulder": (controller.OFFSETS[3], controller.N_SHOULDER),
}


def load_split(directory: Path) -> dict[str, np.ndarray]:
    return {name: np.load(directory / f"{name}.npy") for name in (*ARRAYS, "offsets")}


def onehot_classes(floats: np.ndarray) -> dict[str, np.ndarray]:
    """The four controller classes a row's one-hot encodes (argmax of each block)."""
    ctrl = floats[..., -controller.CONTROLLER_DIM :]
    return {k: ctrl[..., o : o + n].argmax(-1) for k, (o, n) in BLOCKS.items()}


@pytest.fixture(scope="module")
def built(ingested, tmp_path_factory) -> dict:
    """The norm stage and the shards (correct and leaked alignment) of CHARS, once."""
    tmp = tmp_path_factory.mktemp("shards")
    settings = stage_params("features", PARAMS)
    schema = load_schema(AUDIT)
    norm_dir, out, leaked = tmp / "norm", tmp / "shards", tmp / "leaked"
    fitted = dataset.fit_characters(ingested, CHARS, schema, settings, norm_dir)
    metrics = shards.build_all(
        ingested, norm_dir, AUDIT, out, CHARS, settings, tmp / "metrics" / "shards.json"
    )
    leaked_metrics = {
        c: shards.build_character(ingested, norm_dir, leaked, c, schema, settings, target_shift=0)
        for c in CHARS
    }
    return {
        "settings": settings,
        "schema": schema,
        "norm_dir": norm_dir,
        "out": out,
        "leaked": leaked,
        "fitted": fitted,
        "metrics": metrics,
        "metrics_file": tmp / "metrics" / "shards.json",
        "leaked_metrics": leaked_metrics,
    }


def manifest(built: dict, character: str, which: str = "out") -> dict:
    return json.loads((built[which] / character / "manifest.json").read_text())


# --- the JUMP-onset leak rate (SPEC 3.9) ---------------------------------------------------------


def leak_arrays(buttons: list[int], actions: list[int]) -> tuple[np.ndarray, np.ndarray]:
    targets = np.full((len(buttons), 4), 0, np.int16)
    targets[:, BUTTON] = buttons
    ints = np.zeros((len(actions), 5), np.int16)
    ints[:, ACTION] = actions
    return targets, ints


def test_jump_onset_leak_on_hand_made_rows_counts_per_game():
    J, N, KB = controller.BTN_JUMP, controller.BTN_NONE, shards.KNEE_BEND
    targets, ints = leak_arrays(
        # game 0: an onset at row 1 (leaked: squat shown), JUMP held at row 2 (not an onset)
        # game 1: JUMP on its first row after NONE at game 0's last row: not an onset, though the
        #         row shows the squat; an onset at row 7 without the squat; one at row 9 with it
        # game 2: one row, JUMP with squat: nothing before it in the game, so no onset
        [N, J, J, N, J, J, N, J, N, J, J],
        [0, KB, 0, 0, KB, 0, 0, 0, 0, KB, KB],
    )
    offsets = np.array([0, 4, 10, 11, 11])  # the last game is empty
    assert shards.jump_onset_leak(targets, ints, offsets) == {
        "onsets": 3,
        "leaked": 2,
        "rate": 2 / 3,
    }
    # the same rows as one flat game: row 4 becomes a (leaked) onset that straddles two games
    flat = shards.jump_onset_leak(targets, ints, np.array([0, 11]))
    assert (flat["onsets"], flat["leaked"]) == (4, 3)


def test_jump_onset_leak_without_onsets_is_zero():
    targets, ints = leak_arrays([controller.BTN_JUMP] * 3, [shards.KNEE_BEND] * 3)
    assert shards.jump_onset_leak(targets, ints, np.array([0, 3])) == {
        "onsets": 0,
        "leaked": 0,
        "rate": 0.0,
    }
    assert shards.jump_onset_leak(targets[:0], ints[:0], np.array([0]))["rate"] == 0.0


@pytest.mark.parametrize("character", CHARS)
def test_leak_rate_low_with_v2_alignment_and_tens_of_percent_when_leaked(built, character):
    good, bad = manifest(built, character), manifest(built, character, "leaked")
    assert (good["target_shift"], bad["target_shift"]) == (1, 0)
    assert good["split"] == bad["split"]  # same data: only the shift differs
    assert [g["md5"] for g in good["train"]["games"]] == [g["md5"] for g in bad["train"]["games"]]
    assert bad["train"]["rows"] == good["train"]["rows"] + len(good["train"]["games"])
    for which, m in (("out", good), ("leaked", bad)):  # the recorded figure is the arrays' own
        a = load_split(built[which] / character / "train")
        assert m["jump_onset_leak"] == shards.jump_onset_leak(a["targets"], a["ints"], a["offsets"])
    assert good["jump_onset_leak"] == built["metrics"]["characters"][character]["jump_onset_leak"]
    assert bad["jump_onset_leak"] == built["leaked_metrics"][character]["jump_onset_leak"]
    assert good["jump_onset_leak"]["onsets"] >= 100  # enough onsets for the rate to mean something
    assert good["jump_onset_leak"]["rate"] < 0.10
    assert bad["jump_onset_leak"]["rate"] > 0.30


# --- alignment: input i = controller i, target = controller i + 1 --------------------------------


def test_row_i_holds_frame_i_input_and_frame_i_plus_1_controller(built, ingested):
    m = manifest(built, "falco")
    data, norm = built["fitted"]["falco"].data, built["fitted"]["falco"].norm
    view = data.train[0]
    assert (m["train"]["games"][0]["md5"], m["train"]["games"][0]["self_port"]) == (
        view.md5,
        view.self_port,
    )
    raw_cols = dataset.perspective_raw(ingested, view)
    n = len(raw_cols["frame"])
    classes = build.controller_classes(raw_cols)
    assert all(len(np.unique(classes[k])) > 1 for k in shards.TARGET_COLUMNS)  # not a constant
    assert any((classes[k][1:] != classes[k][:-1]).any() for k in shards.TARGET_COLUMNS)

    a = load_split(built["out"] / "falco" / "train")
    rows = slice(a["offsets"][0], a["offsets"][1])
    assert a["offsets"][1] - a["offsets"][0] == n - 1  # one frame per game is lost
    targets, floats, ints = a["targets"][rows], a["floats"][rows], a["ints"][rows]
    onehot = onehot_classes(floats)
    for j, k in enumerate(shards.TARGET_COLUMNS):
        np.testing.assert_array_equal(targets[:, j], classes[k][1:], err_msg=k)
        np.testing.assert_array_equal(onehot[k], classes[k][:-1], err_msg=k)
    ctrl = floats[:, -controller.CONTROLLER_DIM :]
    assert set(np.unique(ctrl)) == {0.0, 1.0} and (ctrl.sum(-1) == 4).all()
    for j, k in enumerate(shards.TARGET_RAW_COLUMNS):
        np.testing.assert_array_equal(a["targets_raw"][rows][:, j], raw_cols[f"self_{k}"][1:])
    # the rest of row i is the state after frame i
    ints_all, floats_all = build.pack(build.features(raw_cols, built["schema"], norm))
    np.testing.assert_array_equal(ints, ints_all[:-1])
    np.testing.assert_array_equal(floats, floats_all[:-1])

    leaked = load_split(built["leaked"] / "falco" / "train")  # target_shift=0: target = frame i
    lrows = slice(leaked["offsets"][0], leaked["offsets"][1])
    for j, k in enumerate(shards.TARGET_COLUMNS):
        np.testing.assert_array_equal(leaked["targets"][lrows][:, j], classes[k])


@pytest.mark.parametrize("character", CHARS)
@pytest.mark.parametrize("split", SPLITS)
def test_every_target_is_the_next_rows_controller_input(built, character, split):
    a = load_split(built["out"] / character / split)
    onehot = onehot_classes(a["floats"])
    for start, end in zip(a["offsets"][:-1], a["offsets"][1:], strict=True):
        for j, k in enumerate(shards.TARGET_COLUMNS):
            np.testing.assert_array_equal(
                a["targets"][start : end - 1, j], onehot[k][start + 1 : end]
            )


# --- finite features on every perspective of every game ------------------------------------------


def test_features_are_finite_on_every_perspective_of_every_two_player_game(built, ingested, games):
    norm = built["fitted"]["falco"].norm
    schema = built["schema"]
    seen = recorded_nan = 0
    for row in games.values():
        ports = [p for p in PORTS if row[f"p{p}_character_ext"] is not None]
        if len(ports) != 2:
            continue
        version = tuple(int(v) for v in row["slippi_version"].split("."))
        for me, opp in (ports, ports[::-1]):
            view = Perspective(row["md5"], me, opp, row["stage_id"], version)
            raw_cols = dataset.perspective_raw(ingested, view)
            recorded_nan += int(np.isnan(build.numeric_values(raw_cols, "self_", schema)).any())
            feats = build.features(raw_cols, schema, norm)
            for name, values in feats.items():
                assert np.isfinite(values).all(), (row["source"], me, name)
            ints, floats = build.pack(feats)
            assert len(ints) == len(floats) == len(raw_cols["frame"]) > 0
            assert np.isfinite(floats).all() and (ints >= 0).all(), (row["source"], me)
            seen += 1
    assert seen >= 100  # 59 two-player games in the shared replays
    assert recorded_nan > 0  # old Slippi versions (values not recorded) are among them


# --- the split -----------------------------------------------------------------------------------


FAKE_MD5S = [f"{i:032x}" for i in range(20)]


def test_split_md5s_is_a_seeded_partition():
    train, val = split_md5s(FAKE_MD5S[::-1] + FAKE_MD5S[:3], 0.2, seed=42)  # order, duplicates
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(FAKE_MD5S)
    assert len(val) == 4 and len(train) == 16
    assert train == sorted(train) and val == sorted(val)
    assert split_md5s(FAKE_MD5S, 0.2, seed=42) == (train, val)
    assert any(split_md5s(FAKE_MD5S, 0.2, seed=s)[1] != val for s in range(1, 6))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_split_md5s_keeps_a_validation_game_when_it_can(n):
    train, val = split_md5s(FAKE_MD5S[:n], 0.01, seed=0)
    assert len(val) == 1 and len(train) == n - 1
    assert split_md5s(FAKE_MD5S[:1], 0.2, seed=0) == (FAKE_MD5S[:1], [])


def test_split_md5s_holds_out_at_least_min_val_games():
    """Sheik's 61 games at 10 % would give 6 validation games; `min_val` makes it 10, and a
    character with more games keeps its 10 %."""
    md5s = [f"{i:032x}" for i in range(200)]
    assert len(split_md5s(md5s[:61], 0.1, seed=0, min_val=10)[1]) == 10
    assert len(split_md5s(md5s[:61], 0.1, seed=0)[1]) == 6
    assert len(split_md5s(md5s, 0.1, seed=0, min_val=10)[1]) == 20
    train, val = split_md5s(md5s[:5], 0.1, seed=0, min_val=10)
    assert len(train) == 1 and len(val) == 4  # each side keeps a game
    with pytest.raises(UsageError, match="min_val_games"):
        split_md5s(md5s, 0.1, seed=0, min_val=0)


@pytest.mark.parametrize("character", CHARS)
def test_split_is_disjoint_complete_and_recorded(built, ingested, character):
    m = manifest(built, character)
    split, settings = m["split"], built["settings"]
    assert (split["seed"], split["val_frac"]) == (settings["seed"], settings["val_frac"])
    train, val = set(split["train_md5s"]), set(split["val_md5s"])
    assert train and val and not train & val
    views = perspectives(read_games(ingested), character, include_quits=settings["include_quits"])
    assert train | val == {v.md5 for v in views}
    assert {g["md5"] for g in m["train"]["games"]} == train
    assert {g["md5"] for g in m["val"]["games"]} == val
    complete = {v.md5 for v in perspectives(read_games(ingested), character)}  # usable_1v1
    train_complete, val_complete = split_md5s(
        [v.md5 for v in views if v.md5 in complete], settings["val_frac"], settings["seed"]
    )
    assert split["val_md5s"] == val_complete  # validation: complete games only
    assert split["train_md5s"] == sorted(set(train_complete) | (train - complete))
    data = built["fitted"][character].data  # the norm was fitted on the same training games
    assert data.split == split


def test_quit_ended_games_join_only_with_the_switch(ingested):
    games = read_games(ingested)
    rows = {g["md5"]: g for g in games.to_pylist()}
    strict = perspectives(games, POOLED)
    loose = perspectives(games, POOLED, include_quits=True)
    assert set(strict) < set(loose)
    for view in set(loose) - set(strict):
        g = rows[view.md5]
        assert not g["usable_1v1"] and not g["normal_end"]
        assert g["is_1v1"] and g["legal_stage"] and g["enough_frames"]
    assert all(rows[v.md5]["usable_1v1"] for v in strict)


def test_the_pooled_split_holds_out_every_characters_validation_games(built, ingested):
    """`all` takes every character's perspectives; its validation games are exactly the listed
    characters' own, so no model is scored on a game the pooled one trained on."""
    settings = built["settings"] | {"characters": [*CHARS, POOLED]}
    pooled = dataset.character_data(ingested, POOLED, settings)
    own = [dataset.character_data(ingested, c, settings) for c in CHARS]
    assert pooled.split["val_md5s"] == sorted({p.md5 for d in own for p in d.val})
    assert not set(pooled.split["train_md5s"]) & set(pooled.split["val_md5s"])
    for d in own:
        assert set(d.val) <= set(pooled.val)  # the same perspectives, every one
    views = perspectives(read_games(ingested), POOLED, include_quits=settings["include_quits"])
    assert sorted(pooled.train + pooled.val, key=lambda p: (p.md5, p.self_port)) == views
    with pytest.raises(UsageError, match="needs a listed character"):
        dataset.character_data(ingested, POOLED, settings | {"characters": [POOLED]})


# --- streaming: one perspective at a time, any number of workers --------------------------------


@pytest.mark.parametrize("character", CHARS)
def test_streamed_shards_equal_an_in_memory_build(built, ingested, character):
    """The files, filled perspective by perspective at their offsets, hold exactly what one
    concatenation of every perspective's rows holds (the layout before streaming)."""
    fit = built["fitted"][character]
    for split in SPLITS:
        views = getattr(fit.data, split)
        raws = [dataset.perspective_raw(ingested, v) for v in views]
        parts = [shards.perspective_rows(r, built["schema"], fit.norm, 1) for r in raws]
        a = load_split(built["out"] / character / split)
        for name in ARRAYS:
            assert np.array_equal(a[name], np.concatenate([p[name] for p in parts])), name
        lengths = [len(p["ints"]) for p in parts]
        assert np.array_equal(a["offsets"], np.concatenate([[0], np.cumsum(lengths)]))


def test_norm_and_shards_are_the_same_bytes_for_one_worker(built, ingested, tmp_path):
    settings = built["settings"] | {"workers": 1}
    assert built["settings"]["workers"] == 2  # the module's build used a pool of two
    dataset.fit_characters(ingested, ["falco"], built["schema"], settings, tmp_path / "norm")
    shards.build_all(ingested, tmp_path / "norm", AUDIT, tmp_path / "out", ["falco"], settings)
    for ours, theirs in ((tmp_path / "norm", built["norm_dir"]), (tmp_path / "out", built["out"])):
        files = sorted(p.relative_to(ours) for p in (ours / "falco").rglob("*") if p.is_file())
        assert len(files) >= 5
        for f in files:
            assert (ours / f).read_bytes() == (theirs / f).read_bytes(), f


def test_streaming_norm_equals_one_fit_on_the_pooled_frames(built, ingested):
    """Per-perspective moments merged = the statistics of every training frame at once:
    min and max exactly, mean and standard deviation to float64 rounding."""
    schema = built["schema"]
    for character in CHARS:
        fit = built["fitted"][character]
        pooled = np.concatenate(
            [
                build.numeric_values(dataset.perspective_raw(ingested, v), p, schema)
                for v in fit.data.train
                for p in ("self_", "opp_")
            ]
        )
        assert len(fit.data.train) >= 2  # else there is nothing to merge
        one_pass = transforms.fit_mimic_norm(dict(zip(schema.numeric, pooled.T, strict=True)))
        for name, spec in one_pass["features"].items():
            ours = fit.norm.mimic_norm["features"][name]
            assert ours.keys() == spec.keys()
            for key, value in spec.items():
                if key in ("min", "max") or not isinstance(value, float):
                    assert ours[key] == value, (character, name, key)
                else:
                    assert ours[key] == pytest.approx(value, rel=1e-12, abs=1e-12), (name, key)
        assert fit.frames == len(pooled) // 2
        if fit.frames <= built["settings"]["sample_frames"]:  # under the cap: every frame
            assert np.array_equal(fit.before, pooled, equal_nan=True)
        else:  # whole perspectives drawn under the cap
            assert 0 < len(fit.before) <= 2 * built["settings"]["sample_frames"]


def test_the_plotted_sample_is_seeded_and_bounded():
    views = [Perspective(str(i), 1, 2, 31, (3, 18, 0)) for i in range(50)]
    frames = [1000 + 37 * i for i in range(50)]
    assert dataset.plotted_sample(views, frames, sum(frames), 0) == set(range(50))
    chosen = dataset.plotted_sample(views, frames, 10_000, 0)
    assert chosen == dataset.plotted_sample(views, frames, 10_000, 0)
    assert chosen != dataset.plotted_sample(views, frames, 10_000, 1)
    assert 0 < sum(frames[i] for i in chosen) <= 10_000 and len(chosen) >= 5
    assert len(dataset.plotted_sample(views, frames, 10, 0)) == 1  # at least one perspective


# --- the manifest against the arrays -------------------------------------------------------------


@pytest.mark.parametrize("character", CHARS)
@pytest.mark.parametrize("split", SPLITS)
def test_manifest_matches_the_arrays(built, games, character, split):
    m = manifest(built, character)
    a = load_split(built["out"] / character / split)
    n = m[split]["rows"]
    assert n > 0
    assert m["int_columns"] == list(build.INT_COLUMNS)
    assert m["float_columns"] == build.float_columns(built["schema"])
    assert m["target_columns"] == list(shards.TARGET_COLUMNS)
    assert m["target_raw_columns"] == list(shards.TARGET_RAW_COLUMNS)
    assert (m["target_shift"], m["window"]) == (1, built["settings"]["window"])
    assert a["ints"].shape == (n, len(m["int_columns"])) and a["ints"].dtype == np.int16
    assert a["floats"].shape == (n, len(m["float_columns"])) and a["floats"].dtype == np.float32
    assert a["targets"].shape == (n, len(m["target_columns"])) and a["targets"].dtype == np.int16
    assert a["targets_raw"].shape == (n, len(m["target_raw_columns"]))
    assert a["targets_raw"].dtype == np.float32
    assert a["offsets"].dtype == np.int64
    assert a["offsets"][0] == 0 and a["offsets"][-1] == n
    rows = [g["rows"] for g in m[split]["games"]]
    np.testing.assert_array_equal(np.diff(a["offsets"]), rows)
    by_md5 = {r["md5"]: r for r in games.values()}
    assert rows == [by_md5[g["md5"]]["playable_frames"] - 1 for g in m[split]["games"]]
    ctrl_names = m["float_columns"][-controller.CONTROLLER_DIM :]
    assert all(c.startswith("ctrl_") for c in ctrl_names)
    assert not any(c.startswith("ctrl_") for c in m["float_columns"][: -controller.CONTROLLER_DIM])
    limits = [controller.N_SHOULDER, controller.N_C, controller.N_MAIN, controller.N_BUTTON]
    assert (a["targets"] >= 0).all() and (a["targets"].max(0) < limits).all()


# --- the five metadata files ---------------------------------------------------------------------


@pytest.mark.parametrize("character", CHARS)
def test_metadata_files_in_norm_and_shard_dirs(built, character):
    norm_dir, shard_dir = built["norm_dir"] / character, built["out"] / character
    for name in dataset.NORM_FILES:
        assert (norm_dir / name).read_bytes() == (shard_dir / name).read_bytes(), name
    meta = {name: json.loads((shard_dir / name).read_text()) for name in dataset.NORM_FILES}

    features = meta["mimic_norm.json"]["features"]
    assert len(features) == 16
    assert set(features) == {*built["schema"].numeric, "facing", "invulnerable", "on_ground"}
    assert all("transform" in spec for spec in features.values())

    stats = meta["norm_stats.json"]
    assert set(stats) == {f"{p}{n}" for p in ("self_", "opp_") for n in built["schema"].numeric}
    for name, value in stats.items():
        assert len(value) == 2 and all(np.isfinite(value)) and value[1] >= 1.0, name
        assert value == stats["opp_" + name.removeprefix("self_").removeprefix("opp_")]

    clusters = meta["stick_clusters.json"]
    assert len(clusters["stick_centers"]) == 37
    assert all(len(xy) == 2 for xy in clusters["stick_centers"])
    centers = np.asarray(clusters["stick_centers"], np.float32)  # as written: 0.675, not float32
    np.testing.assert_array_equal(centers, controller.MAIN_STICK_CENTERS)
    assert clusters["shoulder_centers"] == [0.0, 0.4, 1.0]

    combos = meta["controller_combos.json"]
    assert combos["button_names"] == ["A", "B", "Z", "JUMP", "TRIG", "A_TRIG", "NONE"]
    assert (combos["n_combos"], combos["class_scheme"]) == (7, "melee_7class")

    cat_maps = meta["cat_maps.json"]
    assert set(cat_maps) == {"self_port", "opp_port"}
    for mapping in cat_maps.values():
        assert all(isinstance(k, str) and isinstance(v, int) for k, v in mapping.items())
        assert mapping["0"] == 0
        assert sorted(mapping.values()) == list(range(len(mapping)))


# --- the window sampler --------------------------------------------------------------------------


def write_split(directory: Path, lengths: list[int]) -> np.ndarray:
    """A hand-made split whose rows say where they are: floats[:, 0] is the row index."""
    directory.mkdir(parents=True)
    n = sum(lengths)
    rows = np.arange(n)
    arrays = {
        "ints": (rows[:, None] * 5 + np.arange(5)) % 30000,
        "floats": rows[:, None] + np.arange(3) / 4,
        "targets": (rows[:, None] * 4 + np.arange(4)) % 30000,
        "targets_raw": rows[:, None] / 2 + np.arange(5),
    }
    dtypes = {
        "ints": np.int16,
        "floats": np.float32,
        "targets": np.int16,
        "targets_raw": np.float32,
    }
    for name, values in arrays.items():
        np.save(directory / f"{name}.npy", values.astype(dtypes[name]))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    np.save(directory / "offsets.npy", offsets)
    return offsets


@pytest.fixture(scope="module")
def marked_split(built, tmp_path_factory) -> Path:
    """falco's real training split, with floats[:, 0] replaced by the row index."""
    directory = tmp_path_factory.mktemp("marked") / "train"
    shutil.copytree(built["out"] / "falco" / "train", directory)
    floats = np.load(directory / "floats.npy")
    assert len(floats) < 2**24  # exact in float32
    floats[:, 0] = np.arange(len(floats))
    np.save(directory / "floats.npy", floats)
    return directory


def window_starts(batch: dict[str, np.ndarray]) -> np.ndarray:
    return batch["floats"][:, 0, 0].astype(np.int64)


def test_sampled_windows_are_contiguous_slices_inside_one_game(marked_split):
    a = load_split(marked_split)
    offsets, window = a["offsets"], 180
    sampler = WindowSampler(marked_split, window, seed=3)
    assert len(sampler) == sum(max(0, int(n) - window + 1) for n in np.diff(offsets))
    for _ in range(4):
        batch = sampler.sample(64)
        assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
            k: ((64, window, *a[k].shape[1:]), a[k].dtype) for k in ARRAYS
        }
        for b, s in enumerate(window_starts(batch)):
            game = np.searchsorted(offsets, s, side="right") - 1
            assert offsets[game] <= s and s + window <= offsets[game + 1]
            for name in ARRAYS:
                np.testing.assert_array_equal(batch[name][b], a[name][s : s + window])


def test_sampler_is_seeded_and_resumes_from_its_state(marked_split):
    first, second = WindowSampler(marked_split, 180, 7), WindowSampler(marked_split, 180, 7)
    for _ in range(3):
        x, y = first.sample(32), second.sample(32)
        for name in ARRAYS:
            np.testing.assert_array_equal(x[name], y[name])
    other = WindowSampler(marked_split, 180, 8).sample(32)
    assert not np.array_equal(window_starts(other), window_starts(first.sample(32)))

    state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint would store it
    expected = first.sample(32)
    resumed = WindowSampler(marked_split, 180, 123)
    resumed.load_state_dict(state)
    got = resumed.sample(32)
    for name in ARRAYS:
        np.testing.assert_array_equal(got[name], expected[name])
    np.testing.assert_array_equal(
        window_starts(resumed.sample(32)), window_starts(first.sample(32))
    )


def test_sampler_in_memory_gives_the_same_windows(marked_split):
    mapped, loaded = WindowSampler(marked_split, 90, 5), WindowSampler(marked_split, 90, 5, False)
    x, y = mapped.sample(16), loaded.sample(16)
    for name in ARRAYS:
        np.testing.assert_array_equal(x[name], y[name])


def test_sampler_without_a_long_enough_game_raises(tmp_path, marked_split):
    write_split(tmp_path / "short", [5, 19, 10])
    with pytest.raises(ValueError, match="20 rows"):
        WindowSampler(tmp_path / "short", 20)
    WindowSampler(tmp_path / "short", 19)  # exactly one window
    longest = int(np.diff(np.load(marked_split / "offsets.npy")).max())
    WindowSampler(marked_split, longest)
    with pytest.raises(ValueError):
        WindowSampler(marked_split, longest + 1)


def test_sampler_finds_starts_from_counts_as_a_list_of_every_start_would(tmp_path):
    window, lengths = 20, [5, 50, 200, 20, 19, 1000]  # two games too short for a window
    offsets = write_split(tmp_path / "split", lengths)
    every = np.concatenate([np.arange(a, b - window + 1) for a, b in pairwise(offsets)])
    sampler = WindowSampler(tmp_path / "split", window, seed=4)
    assert np.array_equal(sampler.starts_of(np.arange(len(sampler))), every)
    rng = np.random.default_rng(4)  # the draws of the sampler before it stopped listing starts
    for _ in range(3):
        assert np.array_equal(window_starts(sampler.sample(64)), rng.choice(every, 64))


def test_sampler_starts_are_uniform_over_valid_starts(tmp_path):
    window, lengths = 20, [5, 50, 200, 1000, 20]  # the first game is too short for a window
    offsets = write_split(tmp_path / "split", lengths)
    valid = np.array([max(0, n - window + 1) for n in lengths])  # 0, 31, 181, 981, 1
    sampler = WindowSampler(tmp_path / "split", window, seed=11)
    assert len(sampler) == valid.sum()
    starts = np.concatenate([window_starts(sampler.sample(500)) for _ in range(40)])
    game = np.searchsorted(offsets, starts, side="right") - 1
    counts = np.bincount(game, minlength=len(lengths))
    expected = len(starts) * valid / valid.sum()
    assert counts[0] == 0
    assert (np.abs(counts - expected) <= 6 * np.sqrt(expected) + 1).all(), (counts, expected)
    assert (starts + window <= offsets[game + 1]).all()
    # within the long game: every tenth of its valid starts gets its share, both ends included
    long = starts[game == 3] - offsets[3]
    assert long.min() == 0 and long.max() == lengths[3] - window
    tenths = np.bincount(long * 10 // valid[3], minlength=10)
    assert (np.abs(tenths - len(long) / 10) <= 6 * np.sqrt(len(long) / 10)).all(), tenths


def test_real_games_get_windows_in_proportion_to_their_valid_starts(marked_split):
    offsets, window = np.load(marked_split / "offsets.npy"), 180
    valid = np.maximum(np.diff(offsets) - window + 1, 0)
    sampler = WindowSampler(marked_split, window, seed=0)
    starts = np.concatenate([window_starts(sampler.sample(256)) for _ in range(16)])
    share = np.bincount(np.searchsorted(offsets, starts, side="right") - 1, minlength=len(valid))
    np.testing.assert_allclose(share / len(starts), valid / valid.sum(), atol=0.03)


# --- the command and re-runs ---------------------------------------------------------------------


def shards_args(built: dict, ingested: Path, tmp: Path, *extra: str) -> list[str]:
    return [
        "shards",
        *("--ingest", str(ingested), "--norm", str(built["norm_dir"]), "--audit", str(AUDIT)),
        *("--output", str(tmp / "out"), "--metrics", str(tmp / "metrics.json")),
        *("--params", str(PARAMS), *extra),
    ]


def test_cli_builds_a_character_and_reports_its_leak_rate(built, ingested, tmp_path, capsys):
    assert main(shards_args(built, ingested, tmp_path, "--character", "falco")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("falco: ") and "JUMP-onset leak" in lines[0]
    assert json.loads((tmp_path / "metrics.json").read_text())["characters"].keys() == {"falco"}
    for name in ("manifest.json", "train/floats.npy", "val/offsets.npy"):
        assert (tmp_path / "out" / "falco" / name).read_bytes() == (
            built["out"] / "falco" / name
        ).read_bytes()


def test_cli_unknown_character_is_one_line(built, ingested, tmp_path, capsys):
    assert main(shards_args(built, ingested, tmp_path, "--character", "nobody")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mmlib shards: unknown character 'nobody'")


def test_cli_missing_norm_is_one_line(built, ingested, tmp_path, capsys):
    args = shards_args(built, ingested, tmp_path, "--character", "falco")
    args[args.index("--norm") + 1] = str(tmp_path / "no-norm")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no mimic_norm.json" in err and "dvc repro norm" in err
    assert err.count("\n") == 1 and err.startswith("mmlib shards: ")
    assert not (tmp_path / "out" / "falco").exists()


def test_cli_missing_ingest_is_one_line(built, tmp_path, capsys):
    assert main(shards_args(built, tmp_path / "no-ingest", tmp_path, "--character", "falco")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mmlib shards: ")


def test_rebuild_replaces_the_output_cleanly(built, ingested, tmp_path):
    out, args = tmp_path / "out", (built["schema"], built["settings"])
    first = shards.build_character(ingested, built["norm_dir"], out, "marth", *args)
    manifest_bytes = (out / "marth" / "manifest.json").read_bytes()
    (out / "marth" / "stale.npy").write_bytes(b"left from an older build")
    (out / ".marth.tmp" / "train").mkdir(parents=True)  # a killed build's leftovers
    second = shards.build_character(ingested, built["norm_dir"], out, "marth", *args)
    assert second == first
    assert sorted(p.name for p in out.iterdir()) == ["marth"]
    assert not (out / "marth" / "stale.npy").exists()
    assert (out / "marth" / "manifest.json").read_bytes() == manifest_bytes
    assert manifest_bytes == (built["out"] / "marth" / "manifest.json").read_bytes()
    for split in SPLITS:
        for name in (*ARRAYS, "offsets"):
            path = Path(split) / f"{name}.npy"
            assert (out / "marth" / path).read_bytes() == (
                built["out"] / "marth" / path
            ).read_bytes()


def test_a_single_game_character_has_an_empty_but_typed_val_split(built, tmp_path):
    arrays = shards._empty_rows(built["schema"])
    assert arrays["floats"].shape == (0, len(build.float_columns(built["schema"])))
    assert {a.dtype for a in arrays.values()} == {np.dtype(np.int16), np.dtype(np.float32)}


def test_split_keeps_a_game_on_each_side():
    train, val = split_md5s(["a", "b"], 0.9, 0)
    assert len(train) == 1 and len(val) == 1 and set(train + val) == {"a", "b"}
    with pytest.raises(UsageError):
        split_md5s(["a", "b"], 1.0, 0)


def test_a_listed_character_without_games_is_skipped_and_said(built, ingested, tmp_path, capsys):
    # mewtwo's one game here ends in a quit: no usable game unless quits are included
    settings, schema = built["settings"] | {"include_quits": False}, built["schema"]
    fitted = dataset.fit_characters(ingested, ["falco", "mewtwo"], schema, settings, tmp_path)
    assert list(fitted) == ["falco"] and not (tmp_path / "mewtwo").exists()
    assert "norm: skipped: no usable 1v1 game" in capsys.readouterr().out
    metrics = shards.build_all(
        ingested, tmp_path, AUDIT, tmp_path / "out", ["falco", "mewtwo"], settings
    )
    assert list(metrics["characters"]) == ["falco"]
    assert "mewtwo" in metrics["skipped"]["mewtwo"]
    with pytest.raises(dataset.NoGames, match="mewtwo"):  # nothing to build at all: an error
        dataset.fit_characters(ingested, ["mewtwo"], schema, settings, tmp_path / "n")
    with pytest.raises(UsageError, match="unknown character"):  # a typo is never skipped
        dataset.fit_characters(ingested, ["falco", "fxo"], schema, settings, tmp_path / "n")


def test_a_character_whose_training_games_lack_a_column_is_skipped_by_norm_and_shards(
    built, ingested, tmp_path, capsys
):
    """Peach's one training game here is a Slippi 1.7.1 replay: no jumps, speeds or hitlag. A
    norm without those columns would fail the shards (and the bot would meet them unseen in play),
    so norm skips her with the reason, and shards skips her too (quit-ended games left out: one
    of them is a newer replay of hers)."""
    settings, schema = built["settings"] | {"include_quits": False}, built["schema"]
    fitted = dataset.fit_characters(ingested, ["falco", "peach"], schema, settings, tmp_path)
    assert list(fitted) == ["falco"] and not (tmp_path / "peach").exists()
    why = dataset.norm_skipped(tmp_path)["peach"]
    assert "records jumps_left" in why and "Slippi 1.7.1" in why
    assert f"norm: skipped: {why}" in capsys.readouterr().out
    metrics = shards.build_all(
        ingested, tmp_path, AUDIT, tmp_path / "out", ["falco", "peach"], settings
    )
    assert list(metrics["characters"]) == ["falco"] and metrics["skipped"] == {"peach": why}
    with pytest.raises(dataset.NoGames, match="peach records jumps_left"):
        dataset.fit_characters(ingested, ["peach"], schema, settings, tmp_path / "n")
    assert not (tmp_path / "n" / dataset.SKIPPED).exists()
