"""The ECB audit on real replays: libmelee's `ecb_top_x/y` are integer fields' bits, the audit
sees through their 100 % non-zero share, and the kept schema is read back from audit.json."""

from __future__ import annotations

import json
from hashlib import md5
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPLAYS, SPEC_NUMERIC, needs_replays

from mmlib.atomic import write_json
from mmlib.data.ingest import IngestConfig, ingest
from mmlib.data.store import read_games
from mmlib.errors import UsageError
from mmlib.features import audit as A
from mmlib.features import audit_report as R
from mmlib.features import audit_rows
from mmlib.features.columns import FLAGS, OLD_NUMERIC
from mmlib.features.schema import FeatureSchema, load_schema

MODERN = ["peppi-v3.16.slp", "peppi-v3.18.slp"]  # small, Slippi >= 3.16: both aliases present
# Slippi 1.0, 5,209 frames: stocks and shields change (the modern two are too short for that)
OLD = "peppi-game.slp"
KEPT_NUMERIC = SPEC_NUMERIC
ECB = [c.name for c in OLD_NUMERIC if c.name.startswith("ecb_")]


def f32(*bits: int) -> np.ndarray:
    return np.array(bits, dtype=np.uint32).view(np.float32)


@pytest.fixture(scope="module")
def modern(tmp_path_factory) -> dict:
    """Three replays ingested and audited; the two modern ones read on both paths and aligned."""
    if not (REPLAYS / "games").is_dir():
        pytest.skip(f"the shared replays are not at {REPLAYS}")
    out = tmp_path_factory.mktemp("audit") / "ingest"
    files = [REPLAYS / "games" / n for n in [*MODERN, OLD]]
    ingest(files, out, IngestConfig(workers=1), progress=False)
    games = read_games(out).to_pandas()
    games = games[games["source"].map(lambda s: s.endswith(tuple(MODERN)))]
    rows = A.read_rows(out, games, REPLAYS / "games")
    return {
        "lm": rows.lm,
        "unreadable": rows.unreadable,
        "aligned": rows.aligned,
        "rolled": rows.rolled_back,
        "audit": A.run_audit(out, REPLAYS / "games", cap=1, seed=0),  # 3 versions: every game
    }


# --- pure functions on hand-made values ----------------------------------------------------------


def test_bit_classes_sorts_every_float32_pattern():
    values = f32(
        0x00000000,  # +0
        0x80000000,  # -0
        0x00000001,  # 1 * 2**-149, the smallest subnormal
        0x007FFFFF,  # the largest subnormal
        0x00800000,  # the smallest normal
        0x3F800000,  # 1.0
        0xC0200000,  # -2.5
        0x7F800000,  # inf
        0xFF800000,  # -inf
        0x7FC00000,  # NaN
        0xFFFFFFFF,  # NaN, a u32 -1 read as a float
    )
    assert A.bit_classes(values) == {"zero": 2, "subnormal": 2, "normal": 3, "nan_inf": 4}
    assert A.bit_classes(np.array([318], np.uint32).view(np.float32))["subnormal"] == 1


def test_figures_count_nan_as_non_zero_and_keep_min_max_finite():
    fig = A.figures(np.array([0, np.nan, np.nan, 2.5, -1], dtype=np.float32))
    assert fig["nonzero_share"] == pytest.approx(0.8)
    assert (fig["distinct"], fig["nan"], fig["min"], fig["max"]) == (4, 2, -1.0, 2.5)
    assert fig["subnormal_share"] == 0.0 and not fig["constant"]
    flags = A.figures(np.array([True, True]))
    assert flags["constant"] and flags["nonzero_share"] == 1.0 and "bits" not in flags


def test_alias_check_needs_every_row_equal():
    ids = np.array([2, 318, 0xFFFFFFFF], np.uint32)
    alias = A.alias_check(ids.view(np.float32), {"same": ids, "off": ids + np.uint32(1)})
    assert alias == {"same": {"rows": 3, "equal": 3}, "off": {"rows": 3, "equal": 0}}
    assert A.aliased_to(alias, nonzero_rows=3) == "same"
    assert A.aliased_to(alias, nonzero_rows=0) is None  # all-zero columns alias nothing


def test_verdict_drops_subnormal_values_even_without_an_alias():
    """Integer bits are caught by the subnormal share alone, whatever the non-zero share."""
    ints = np.arange(1, 101, dtype=np.uint32).view(np.float32)
    physical = np.linspace(-50, 50, 100, dtype=np.float32)
    recorded = {"3.18.0": {"recorded": True, **A.figures(physical)}}
    bits_fig = {"3.18.0": {**A.figures(ints), "aliased_to": None}}
    assert bits_fig["3.18.0"]["nonzero_share"] == 1.0
    decision, reason = A.verdict("pos_x", bits_fig, recorded)
    assert decision == "drop" and "no signal on libmelee" in reason and "subnormal" in reason
    good = {"3.18.0": {**A.figures(physical), "aliased_to": None}}
    assert A.verdict("pos_x", good, recorded)[0] == "keep"
    assert A.verdict("pos_x", good, {"3.18.0": {"recorded": False, "rows": 0}})[0] == "drop"


def _games(counts: dict[str, int]) -> pd.DataFrame:
    """A games table with `n` games of each version, listed in version order (not md5 order)."""
    rows = [(md5(f"{v}/{i}".encode()).hexdigest(), v) for v, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["md5", "slippi_version"])


def test_sample_games_is_seeded_and_capped_per_version():
    games = _games({"3.7.0": 30, "1.0.0": 12, "3.18.0": 2})
    sample = A.sample_games(games, cap=5, seed=0)
    counts = sample["slippi_version"].value_counts().to_dict()
    assert counts == {"3.7.0": 5, "1.0.0": 5, "3.18.0": 2}
    assert list(sample.index) == sorted(sample.index)  # rows keep the table's order
    shuffled = games.sample(frac=1, random_state=1)
    again = A.sample_games(shuffled, cap=5, seed=0)
    assert set(again["md5"]) == set(sample["md5"])  # the draw is over md5 order, not row order
    assert set(A.sample_games(games, cap=5, seed=1)["md5"]) != set(sample["md5"])
    one_more = pd.concat([games, _games({"9.9.9": 40})], ignore_index=True)
    kept = A.sample_games(one_more, cap=5, seed=0)
    assert set(sample["md5"]) <= set(kept["md5"])  # a version's draw ignores the others' games
    pd.testing.assert_frame_equal(A.sample_games(games, cap=30, seed=0), games)  # under the cap
    with pytest.raises(UsageError, match="at least 1"):
        A.sample_games(games, cap=0, seed=0)


@needs_replays
def test_a_cap_of_one_keeps_one_game_per_version_of_the_real_ingest(ingested):
    games = read_games(ingested).to_pandas()
    sample = A.sample_games(games, cap=1, seed=0)
    assert sample["slippi_version"].value_counts().to_dict() == dict.fromkeys(
        games["slippi_version"].unique(), 1
    )
    assert len(games) > len(sample) > 5


@needs_replays
def test_run_audit_reads_only_the_sampled_games(tmp_path, monkeypatch):
    """Three short Slippi 1.0 replays and one 3.16 with a cap of 2: libmelee, the peppi rows and
    the ingest-field figures read the two drawn 1.0 games and the 3.16 one, nothing else."""
    names = ["peppi-joystick_udlr.slp", "peppi-ics.slp", "peppi-buttons_abxy.slp", MODERN[0]]
    out = tmp_path / "ingest"
    ingest([REPLAYS / "games" / n for n in names], out, IngestConfig(workers=1), progress=False)
    read = {"libmelee": set(), "frames": set()}

    def spy(name, real):
        def wrapped(*args, **kwargs):
            read[name].add(Path(args[0]).name if name == "libmelee" else args[1])
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(audit_rows, "read_libmelee", spy("libmelee", audit_rows.read_libmelee))
    monkeypatch.setattr(audit_rows, "read_frames", spy("frames", audit_rows.read_frames))
    monkeypatch.setattr(A, "read_frames", spy("frames", A.read_frames))
    audit = A.run_audit(out, REPLAYS / "games", cap=2, seed=0)
    sample = A.sample_games(read_games(out).to_pandas(), cap=2, seed=0)
    assert audit["n_games"] == len(sample) == 3
    assert read["frames"] == set(sample["md5"])
    assert read["libmelee"] == {Path(s).name for s in sample["source"]}
    assert audit["sample"] == {
        "cap": 2,
        "seed": 0,
        "versions": {"1.0.0": {"games": 3, "audited": 2}, "3.16.0": {"games": 1, "audited": 1}},
    }
    assert audit["versions"]["1.0.0"]["games"] == 2


# --- the real replays ----------------------------------------------------------------------------


@needs_replays
def test_libmelee_ecb_top_x_is_the_animation_index(modern):
    lm, aligned = modern["lm"], modern["aligned"]
    assert modern["unreadable"] == {}
    assert (lm["ecb_top_x"] != 0).all()  # NaN included: "non-zero" on every frame
    assert len(aligned) > 2400 and len(modern["rolled"]) > 0  # v3.16 has rollback frames
    bits = aligned["ecb_top_x"].to_numpy().view(np.uint32)
    assert (bits == aligned["post_animation_index"].to_numpy()).all()
    assert (aligned["ecb_top_x"] != aligned["pos_x"]).any()
    finite = lm["ecb_top_x"][np.isfinite(lm["ecb_top_x"])].to_numpy()
    assert (np.abs(finite) < np.finfo(np.float32).tiny).all()  # every finite value subnormal


@needs_replays
def test_libmelee_ecb_top_y_is_the_packed_instance_ids(modern):
    aligned = modern["aligned"]
    bits = aligned["ecb_top_y"].to_numpy().view(np.uint32)
    packed = aligned["instance_ids"].to_numpy()
    assert (bits == packed).all() and len(np.unique(packed)) > 40
    assert (packed >> 16 != 0).any() and (packed & 0xFFFF != 0).all()  # both halves used


@needs_replays
def test_audit_drops_ecb_top_x_despite_a_full_non_zero_share(modern):
    col = modern["audit"]["columns"]["ecb_top_x"]
    for version in ("3.16.0", "3.18.0"):
        fig = col["libmelee"]["by_version"][version]
        assert fig["nonzero_share"] == 1.0 and fig["subnormal_share"] == 1.0
        assert fig["aliased_to"] == "post_animation_index"
        assert fig["alias"]["post_animation_index"]["equal"] == fig["aligned_rows"] > 0
    assert col["verdict"] == "drop" and "post_animation_index" in col["reason"]
    assert col["libmelee"]["by_version"]["1.0.0"]["fallback"]  # 0: no bytes at 0x4D before 3.11
    assert modern["audit"]["columns"]["ecb_top_y"]["verdict"] == "drop"
    assert "instance_ids" in modern["audit"]["columns"]["ecb_top_y"]["reason"]


@needs_replays
def test_invuln_left_and_the_other_corners_are_constant_zero(modern):
    columns = modern["audit"]["columns"]
    for name in ["invuln_left", *ECB[:6]]:
        fig = columns[name]["libmelee"]["all"]
        assert fig["rows"] > 10_000, name
        assert (fig["nonzero_share"], fig["distinct"], fig["max_abs"]) == (0.0, 1, 0.0), name
        assert columns[name]["peppi"]["all"] is None, name  # no Slippi version records it
        assert columns[name]["verdict"] == "drop", name


@needs_replays
def test_physical_columns_are_kept_and_the_schema_follows_the_verdicts(modern):
    audit = modern["audit"]
    pos = audit["columns"]["pos_x"]
    assert pos["verdict"] == "keep" and pos["libmelee"]["all"]["agrees_with_peppi"] == 1.0
    assert audit["schema"]["numeric"] == KEPT_NUMERIC
    dropped = {n for n, c in audit["columns"].items() if c["verdict"] == "drop"}
    assert dropped >= {"invuln_left", *ECB}
    assert audit["schema"]["flags"] == [f.name for f in FLAGS if f.name not in dropped]
    hitstun = audit["columns"]["hitstun_left"]["libmelee"]["all"]
    assert hitstun["nonzero_outside_gate"] > 0  # libmelee ignores the in-hitstun flag


@needs_replays
def test_load_schema_reads_what_the_audit_wrote(modern, tmp_path):
    path = tmp_path / "audit.json"
    write_json(path, modern["audit"])
    schema = load_schema(path)
    assert schema == FeatureSchema(
        tuple(modern["audit"]["schema"]["numeric"]), tuple(modern["audit"]["schema"]["flags"])
    )
    assert schema.numeric == tuple(KEPT_NUMERIC)


@needs_replays
def test_report_tables_read_the_audit_and_its_json_alike(modern, tmp_path):
    """The notebook's tables show every audited column in schema order, from the audit's dict
    and from audit.json loaded back (sorted keys) alike."""
    audit = modern["audit"]
    path = tmp_path / "audit.json"
    write_json(path, audit)
    loaded = json.loads(path.read_text())
    names = [c.name for c in A.AUDITED]
    for table in (R.verdict_table, R.agreement_table):
        pd.testing.assert_frame_equal(table(audit), table(loaded))
    assert list(R.verdict_table(loaded).index) == names
    shares = R.share_matrix(loaded, "libmelee")
    assert list(shares.index) == names and list(shares.columns) == audit["version_order"]
    assert shares.loc["ecb_top_x", "3.18.0"] == 1.0
    assert R.version_table(audit, "ecb_top_x").loc["3.18.0", "aliased_to"] == "post_animation_index"
    assert list(R.gate_table(audit).index)[-1] == "all"
    assert list(R.ingest_field_table(audit).columns[:1]) == ["since"]


@needs_replays
def test_report_plots_draw_from_the_audit(modern):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    R.plot_nonzero_share(modern["audit"], axes)
    labels = {t.get_text(): t.get_color() for t in axes[0].texts}
    assert labels["100="] == "red"  # ecb_top_x: non-zero everywhere, integer bits, aliased
    fig, ax = plt.subplots()
    R.plot_bit_patterns(modern["audit"], ax)
    assert len(ax.patches) == 3 * len(OLD_NUMERIC)
    plt.close("all")


def test_libmelee_unreadable_files_are_recorded_not_raised():
    bad = REPLAYS / "rejects" / "synthetic-empty.slp"
    if not bad.is_file():
        pytest.skip(f"{bad} is absent")
    rows, unreadable = audit_rows.read_libmelee_all({"x": bad})
    assert len(rows) == 0 and list(unreadable) == ["synthetic-empty.slp"]
    assert unreadable["synthetic-empty.slp"].startswith("DecoderException")


# --- load_schema's errors ------------------------------------------------------------------------


def _one_line_error(path) -> str:
    with pytest.raises(UsageError) as e:
        load_schema(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    return message


def test_load_schema_round_trip(tmp_path):
    path = tmp_path / "audit.json"
    write_json(path, {"schema": {"numeric": ["pos_x", "stock"], "flags": ["facing"]}})
    assert load_schema(path) == FeatureSchema(("pos_x", "stock"), ("facing",))


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "no audit at"),
        ("{not json", "cannot read"),
        ("[1, 2]", "no `schema`"),
        (json.dumps({"columns": {}}), "no `schema`"),
        (json.dumps({"schema": {"numeric": "pos_x", "flags": []}}), "must be a list"),
        (json.dumps({"schema": {"numeric": ["pos_x"]}}), "schema.flags"),
        (json.dumps({"schema": {"numeric": ["pos_z"], "flags": []}}), "unknown columns"),
        (json.dumps({"schema": {"numeric": ["facing"], "flags": []}}), "unknown columns"),
        (json.dumps({"schema": {"numeric": ["stock", "pos_x"], "flags": []}}), "in the order"),
        (json.dumps({"schema": {"numeric": ["pos_x", "pos_x"], "flags": []}}), "once"),
    ],
)
def test_load_schema_says_what_is_wrong_in_one_line(tmp_path, content, expected):
    path = tmp_path / "audit.json"
    if content is not None:
        path.write_text(content)
    assert expected in _one_line_error(path)
