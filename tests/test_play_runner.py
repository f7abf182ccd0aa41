"""`mmlib play`: the up-front checks of every argument, the per-frame decisions on real replays,
and the frame loop driven by a replay's GameStates.

No test starts Dolphin. Where an argument set must pass the Dolphin check, the Dolphin folder is a
fake that libmelee's own `get_exe_path` accepts by looking at file names alone; it is never run
(the checks under test stop before any launch, or the test calls the check function directly).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import libmelee_frames, needs_replays, replay_path

from mmlib.cli import main
from mmlib.play import match, settings

linux_only = pytest.mark.skipif(
    platform.system() != "Linux", reason="the fake Dolphin folder uses the Linux executable name"
)


@pytest.fixture
def fake_dolphin(tmp_path) -> Path:
    """A folder libmelee's `get_exe_path` takes for a Slippi (Ishiiruka) install on Linux."""
    folder = tmp_path / "Slippi Launcher" / "netplay"
    folder.mkdir(parents=True)
    exe = folder / "Slippi_Online-x86_64.AppImage"
    exe.write_bytes(b"")  # never run; were it run, an empty file fails with ENOEXEC
    exe.chmod(0o755)
    return folder


@pytest.fixture
def iso(tmp_path) -> Path:
    path = tmp_path / "melee.iso"
    path.write_bytes(b"GALE01")
    return path


@pytest.fixture
def slippi_home(tmp_path) -> Path:
    """A Dolphin user folder holding Slippi/user.json with the bot's own code."""
    home = tmp_path / "User"
    (home / "Slippi").mkdir(parents=True)
    (home / "Slippi" / "user.json").write_text(json.dumps({"connectCode": "BOT#1"}))
    return home


def _vs_cpu(fox_policy, dolphin, iso, **changes) -> list[str]:
    args = {
        "--replay-dir": iso.parent / "replays",  # never made: no test gets that far
        "--checkpoint": fox_policy,
        "--dolphin-path": dolphin,
        "--iso-path": iso,
        "--character": "fox",
        "--cpu-character": "falco",
        "--cpu-level": 9,
        "--stage": "battlefield",
    } | changes
    return ["play", "vs-cpu", *(str(x) for kv in args.items() for x in kv)]


def _netplay(fox_policy, dolphin, iso, home, **changes) -> list[str]:
    args = {
        "--replay-dir": iso.parent / "replays",
        "--checkpoint": fox_policy,
        "--dolphin-path": dolphin,
        "--iso-path": iso,
        "--character": "FOX",
        "--stage": "FINAL_DESTINATION",
        "--connect-code": "abcd#123",
        "--dolphin-home": home,
    } | changes
    return ["play", "netplay", *(str(x) for kv in args.items() for x in kv)]


def _one_error_line(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit 2 and exactly one line on stderr; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.strip()


# --- every argument checked before anything starts -------------------------------------------


@linux_only
@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"--character": "foxx"}, ["--character 'foxx'", "falco", "fox", "sheik"]),
        ({"--character": "falco"}, ["--character falco", "trained for fox"]),
        ({"--cpu-character": "wireframe_male"}, ["--cpu-character", "marth"]),
        ({"--cpu-character": "sheik"}, ["--cpu-character sheik"]),
        ({"--stage": "corneria"}, ["--stage 'corneria'", "battlefield", "yoshis_story"]),
        ({"--stage": "Venom"}, ["--stage", "final_destination"]),
        ({"--cpu-level": 0}, ["--cpu-level 0", "1-9"]),
        ({"--cpu-level": 10}, ["--cpu-level 10", "1-9"]),
        ({"--temperature": 0}, ["--temperature 0", "> 0"]),
        ({"--temperature": -1.5}, ["--temperature -1.5"]),
        ({"--temperature": "nan"}, ["--temperature nan"]),
        ({"--button-temperature": 0}, ["--button-temperature 0", "> 0"]),
        ({"--port": 5}, ["--port 5", "1-4"]),
        ({"--cpu-port": 1}, ["--port and --cpu-port are both 1"]),
        ({"--iso-path": "/no/such/melee.iso"}, ["--iso-path /no/such/melee.iso"]),
        ({"--dolphin-path": "/no/such/dolphin"}, ["--dolphin-path /no/such/dolphin"]),
        ({"--device": "tpu"}, ["--device 'tpu'", "cpu, cuda"]),
        ({"--connect-timeout": 0}, ["--connect-timeout 0.0", "seconds > 0"]),
        ({"--connect-timeout": "inf"}, ["--connect-timeout inf"]),
    ],
)
def test_vs_cpu_names_the_one_bad_argument(
    capsys, fox_policy, fake_dolphin, iso, changes, expected
):
    line = _one_error_line(capsys, _vs_cpu(fox_policy, fake_dolphin, iso, **changes))
    assert line.startswith("mmlib play vs-cpu: ")
    for text in expected:
        assert text in line


@linux_only
def test_cuda_device_without_cuda(capsys, fox_policy, fake_dolphin, iso):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    line = _one_error_line(capsys, _vs_cpu(fox_policy, fake_dolphin, iso, **{"--device": "cuda"}))
    assert "--device cuda" in line and "not available" in line


@linux_only
def test_dolphin_folder_without_the_executable(capsys, fox_policy, fake_dolphin, iso):
    (fake_dolphin / "Slippi_Online-x86_64.AppImage").unlink()
    line = _one_error_line(capsys, _vs_cpu(fox_policy, fake_dolphin, iso))
    assert f"--dolphin-path {fake_dolphin}" in line
    assert "Slippi_Online-x86_64.AppImage" in line  # libmelee's lookup says what it looked for


def test_dolphin_folder_libmelee_cannot_read(capsys, fox_policy, tmp_path, iso):
    folder = tmp_path / "dolphin"  # no `netplay` in the path: libmelee cannot tell the build
    folder.mkdir()
    line = _one_error_line(capsys, _vs_cpu(fox_policy, folder, iso))
    assert f"--dolphin-path {folder}" in line and "netplay" in line


@linux_only
def test_dolphin_executable_must_be_executable(capsys, fox_policy, fake_dolphin, iso):
    exe = fake_dolphin / "Slippi_Online-x86_64.AppImage"
    exe.chmod(0o644)
    line = _one_error_line(capsys, _vs_cpu(fox_policy, fake_dolphin, iso))
    assert "--dolphin-path" in line and "not executable" in line


@linux_only
@pytest.mark.parametrize("what", ["missing", "empty", "no_model"])
def test_bad_checkpoint(capsys, fox_policy, fake_dolphin, iso, tmp_path, what):
    bad = tmp_path / what
    if what == "empty":
        bad.mkdir()
    if what == "no_model":
        bad.mkdir()
        for name in ("config.json", "metadata.json"):
            (bad / name).write_text((fox_policy / name).read_text())
    line = _one_error_line(capsys, _vs_cpu(fox_policy, fake_dolphin, iso, **{"--checkpoint": bad}))
    assert line.startswith("mmlib play vs-cpu: --checkpoint: ") and str(bad) in line


@linux_only
@pytest.mark.parametrize(
    "code", ["ABCD123", "ABCD#", "#123", "AB1#2", "ABCD#12345", "ABCDEFG#1", "AB#1A", "AB CD#1"]
)
def test_netplay_malformed_connect_code(capsys, fox_policy, fake_dolphin, iso, slippi_home, code):
    argv = _netplay(fox_policy, fake_dolphin, iso, slippi_home, **{"--connect-code": code})
    line = _one_error_line(capsys, argv)
    assert line.startswith(f"mmlib play netplay: --connect-code {code!r}")


@linux_only
@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"--connect-code": "bot#1"}, ["--connect-code BOT#1", "own code"]),
        ({"--max-matches": 0}, ["--max-matches 0"]),
        ({"--max-matches": -2}, ["--max-matches -2"]),
        ({"--character": "zelda"}, ["--character zelda"]),
        ({"--stage": "pokefloats"}, ["--stage 'pokefloats'"]),
        ({"--join-timeout": -5}, ["--join-timeout -5.0", "seconds > 0"]),
        ({"--join-timeout": "nan"}, ["--join-timeout nan"]),
        ({"--connect-timeout": -1}, ["--connect-timeout -1.0"]),
    ],
)
def test_netplay_names_the_one_bad_argument(
    capsys, fox_policy, fake_dolphin, iso, slippi_home, changes, expected
):
    line = _one_error_line(capsys, _netplay(fox_policy, fake_dolphin, iso, slippi_home, **changes))
    for text in expected:
        assert text in line


@linux_only
def test_netplay_needs_the_user_json(capsys, fox_policy, fake_dolphin, iso, tmp_path):
    home = tmp_path / "EmptyUser"
    home.mkdir()
    line = _one_error_line(capsys, _netplay(fox_policy, fake_dolphin, iso, home))
    assert f"--dolphin-home {home}" in line and "Slippi/user.json" in line


@linux_only
def test_exit_status_and_one_line_from_a_real_process(fox_policy, fake_dolphin, iso):
    argv = _vs_cpu(fox_policy, fake_dolphin, iso, **{"--cpu-level": 12})
    run = subprocess.run(
        [sys.executable, "-m", "mmlib", *argv], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert run.stderr.splitlines() == ["mmlib play vs-cpu: --cpu-level 12: expected 1-9"]
    assert run.stdout == ""


@pytest.mark.parametrize(
    "name, slug",
    [("fox", "fox"), ("FOX", "fox"), ("Captain Falcon", "falcon"), ("CPTFALCON", "falcon"),
     ("popo", "ics"), ("Mr. Game & Watch", "gnw"), ("jigglypuff", "puff")],
)  # fmt: skip
def test_character_names_are_case_insensitive(name, slug):
    assert settings.character_slug(name) == slug


@pytest.mark.parametrize(
    "name, stage",
    [("final_destination", "final_destination"), ("FINAL_DESTINATION", "final_destination"),
     ("battlefield", "battlefield"), ("Yoshi's Story", "yoshis_story"),
     ("Dream Land N64", "dreamland"), ("pokemon_stadium", "pokemon_stadium")],
)  # fmt: skip
def test_stage_names_are_case_insensitive_and_legal(name, stage):
    assert settings.stage_name(name) == stage
    assert settings.melee_stage(stage).name.lower() == stage


def test_every_legal_stage_and_no_other():
    import melee

    legal = {s.name.lower() for s in melee.Stage} - {"no_stage", "random_stage"}
    assert {settings.stage_name(s) for s in legal} == legal
    for name in ("corneria", "final destination 2", "random_stage", ""):
        with pytest.raises(settings.UsageError):
            settings.stage_name(name)


@linux_only
def test_valid_vs_cpu_arguments_resolve_to_launch_settings(fox_policy, fake_dolphin, iso):
    from mmlib.checkpoint.directory import Policy
    from mmlib.play.dolphin import console_options

    s = settings.vs_cpu_settings(
        checkpoint=fox_policy,
        dolphin_path=fake_dolphin,
        iso_path=iso,
        character="FOX",
        cpu_character="Falco",
        cpu_level=7,
        stage="Battlefield",
        temperature=0.8,
        seed=3,
        port=2,
        cpu_port=4,
        device="cpu",
        connect_timeout=5,
    )
    # the button head follows --temperature unless given its own
    assert s.temperatures == {"shoulder": 0.8, "c": 0.8, "main": 0.8, "button": 0.8}
    cool = dataclasses.replace(s, button_temperature=0.25)
    assert cool.temperatures == {"shoulder": 0.8, "c": 0.8, "main": 0.8, "button": 0.25}
    assert (s.character, s.cpu_character, s.stage) == ("fox", "falco", "battlefield")
    assert (s.cpu_level, s.port, s.cpu_port, s.temperature, s.seed) == (7, 2, 4, 0.8, 3)
    assert s.connect_timeout_s == 5.0
    assert s.dolphin_exe == fake_dolphin / "Slippi_Online-x86_64.AppImage"
    assert isinstance(s.policy, Policy) and s.policy.metadata["character"] == "fox"
    assert s.replay_dir.is_absolute() and not s.replay_dir.exists()  # checks write nothing
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.cpu_level = 9
    options = console_options(s)
    assert options["path"] == str(fake_dolphin)
    assert options["blocking_input"] and options["online_delay"] == 0
    assert options["tmp_home_directory"] and not options["copy_home_directory"]
    assert options["setup_gecko_codes"] and options["save_replays"]


@linux_only
def test_valid_netplay_arguments_resolve_to_launch_settings(
    fox_policy, fake_dolphin, iso, slippi_home
):
    from mmlib.play.dolphin import console_options

    s = settings.netplay_settings(
        checkpoint=fox_policy,
        dolphin_path=fake_dolphin,
        iso_path=iso,
        character="fox",
        stage="final_destination",
        connect_code="abcd#123",
        dolphin_home=slippi_home / "Slippi",  # the Slippi folder itself is accepted too
        max_matches=-1,
    )
    assert (s.connect_code, s.own_code, s.dolphin_home) == ("ABCD#123", "BOT#1", slippi_home)
    assert s.max_matches == -1 and s.stage == "final_destination"
    assert s.join_timeout_s is None and s.connect_timeout_s == settings.CONNECT_TIMEOUT_S
    timed = settings.netplay_settings(
        checkpoint=fox_policy, dolphin_path=fake_dolphin, iso_path=iso, character="fox",
        stage="battlefield", connect_code="abcd#123", dolphin_home=slippi_home, join_timeout=300,
    )  # fmt: skip
    assert timed.join_timeout_s == 300.0
    options = console_options(s)
    assert options["online_delay"] == 2 and options["blocking_input"]
    assert options["copy_home_directory"] and options["dolphin_home_path"] == str(slippi_home)


# --- per-frame decisions on real GameStates ----------------------------------------------------


@needs_replays
def test_in_game_on_replay_states_and_menus():
    import melee

    states = libmelee_frames("peppi-nintendont.slp")
    assert all(match.in_game(s) for s in states)
    state = copy.copy(states[-1])  # the frames are shared by other tests
    for menu in melee.Menu:
        state.menu_state = menu
        assert match.in_game(state) == (menu in (melee.Menu.IN_GAME, melee.Menu.SUDDEN_DEATH))


@needs_replays
def test_detect_ports_takes_the_bots_port_not_the_second_lowest():
    import melee

    # Sheik (costume 0) on port 2 against Marth (costume 1) on port 4.
    state = libmelee_frames("peppi-nintendont.slp")[200]
    assert match.detect_ports(state, melee.Character.SHEIK, 0) == (2, 4)
    assert match.detect_ports(state, melee.Character.MARTH, 1) == (4, 2)
    # The character alone decides when the costume does not match (libmelee's detector gives 0).
    assert match.detect_ports(state, melee.Character.MARTH, 0) == (4, 2)
    assert match.detect_ports(state, melee.Character.FOX, 0) is None


@needs_replays
def test_detect_ports_in_a_ditto_by_costume_then_by_connect_code():
    import melee

    # Captain Falcon (costume 3, DABF#494) on port 1 vs Captain Falcon (costume 0) on port 2.
    state = libmelee_frames("slippijs-techTester.slp")[500]
    falcon = melee.Character.CPTFALCON
    assert match.detect_ports(state, falcon, 0) == (2, 1)
    assert match.detect_ports(state, falcon, 3) == (1, 2)
    assert match.detect_ports(state, falcon, 3, code="OPTI#882") == (2, 1)  # the code comes first
    # Falco vs Falco, both costume 0: only the connect codes tell them apart.
    state = libmelee_frames("slippijs-unranked_game1.slp")[100]
    assert match.detect_ports(state, melee.Character.FALCO, 0) is None
    assert match.detect_ports(state, melee.Character.FALCO, 0, code="nikk#142") == (2, 1)
    assert match.detect_ports(state, melee.Character.FALCO, 0, code="NIKK#513") == (1, 2)


@needs_replays
def test_no_ports_in_a_three_player_game():
    import melee

    state = libmelee_frames("slippijs-placementsTest_ffa_1p2p3p_winner_3p.slp")[50]
    assert len(state.players) == 3
    assert match.detect_ports(state, melee.Character.MARTH, 0) is None


@needs_replays
def test_fixed_ports_need_both_players():
    state = libmelee_frames("slippijs-gnwActions.slp")[300]  # Game & Watch on port 2, Fox on port 3
    assert match.fixed_ports(state, 3, 2) == (3, 2)
    assert match.fixed_ports(state, 1, 2) is None
    assert match.describe(state, 3, 2) == "fox (port 3) vs gameandwatch (port 2) on " + (
        state.stage.name.lower()
    )


@needs_replays
def test_match_result_on_the_last_frame():
    last = libmelee_frames("peppi-nintendont.slp")[
        -1
    ]  # Sheik (port 2) lost her last stock to Marth
    sheik = match.match_result(last, 2, 4)
    marth = match.match_result(last, 4, 2)
    assert (sheik.stocks, marth.stocks) == ((0, 1), (1, 0))
    assert (sheik.outcome, marth.outcome) == ("lost", "won")
    assert sheik.percent == (last.players[2].percent, last.players[4].percent)
    assert sheik.frames == last.frame + 40 and sheik.line().startswith("lost 0-1 in stocks")


def test_outcome_with_equal_stocks_goes_by_percent():
    assert match.MatchResult((2, 2), (40.0, 80.0), 600).outcome == "won"
    assert match.MatchResult((2, 2), (80.0, 40.0), 600).outcome == "lost"
    assert match.MatchResult((2, 2), (50.0, 50.0), 600).outcome == "draw"
    assert match.MatchResult((1, 3), (0.0, 150.0), 600).outcome == "lost"
    assert match.MatchResult((1, 0), (10.0, 0.0), 3661).line().endswith("after 1:01")


def test_slow_frames_warn_at_most_once_every_n_frames():
    budget = match.FrameBudget(budget_s=1 / 60, every=100)
    assert [budget.record(0.001) for _ in range(50)] == [None] * 50  # within budget: silent
    first = budget.record(0.030)
    assert first is not None and "1 of the last 51 frames" in first and "30.0 ms" in first
    later = [budget.record(0.020) for _ in range(100)]
    assert later[:-1] == [None] * 99  # rate-limited
    assert "100 of the last 100 frames" in later[-1] and "20.0 ms" in later[-1]
    assert [budget.record(0.001) for _ in range(300)] == [None] * 300  # no overrun, no warning
    assert not math.isclose(budget.budget_s, 0.0)


# --- the frame loop, driven by a replay ---------------------------------------------------------


class Pipe:
    """Dolphin's side of a controller pipe: records the commands a frame sends, by frame.

    It stands in for the emulator (which no test starts); the code under test is the loop that
    decides what to send, and `press`/`release_all` are the libmelee-shaped calls it makes.
    """

    def __init__(self):
        self.frames: list[list] = [[]]

    def _cmd(self, *cmd):
        self.frames[-1].append(cmd)

    def tilt_analog(self, button, x, y):
        self._cmd("SET", button.name, round(x, 4), round(y, 4))

    def press_shoulder(self, button, amount):
        self._cmd("SET", button.name, round(amount, 4))

    def press_button(self, button):
        self._cmd("PRESS", button.name)

    def release_button(self, button):
        self._cmd("RELEASE", button.name)

    def release_all(self):
        self._cmd("RELEASE_ALL")

    def flush(self):
        self.frames.append([])


class ReplayConsole:
    """libmelee's file console, counting the frames it yields."""

    def __init__(self, name: str):
        import melee

        self.console = melee.Console(
            is_dolphin=False, path=str(replay_path(name)), allow_old_version=True
        )
        self.console.connect()
        self.frames = []

    @property
    def slp_version_tuple(self):
        return self.console.slp_version_tuple

    def step(self):
        state = self.console.step()
        if state is not None:
            self.frames.append(int(state.frame))
        return state


def _replay_session(fox_policy, seed: int):
    import melee

    from mmlib.checkpoint.directory import load_policy
    from mmlib.play import runner
    from mmlib.play.policy import StreamingPolicy

    policy = load_policy(fox_policy)
    console, bot, lines, warnings = ReplayConsole("peppi-v3.16.slp"), Pipe(), [], []
    menus = []
    mode = runner.Mode(
        menus=menus.append,
        seats=lambda s: match.detect_ports(s, melee.Character.FOX, 0, code="CLWN#889"),
        feed_sent=True,
        max_matches=1,
    )

    def new_policy(me, opp, index):
        return StreamingPolicy(policy, me, opp, seed=seed + index, version=(3, 16, 0))

    session = runner.play(
        console, bot, [], mode, new_policy, runner.Session(), out=lines.append, warn=warnings.append
    )
    assert menus == []  # a replay holds no menu frames
    return console, bot, lines, session


@needs_replays
def test_the_loop_plays_a_replay_one_flush_per_frame(fox_policy):
    from mmlib.play.controller import NEUTRAL, press

    console, bot, lines, session = _replay_session(fox_policy, seed=0)
    n = len(console.frames)
    assert n == 308
    # One FLUSH before the first frame, then exactly one per frame.
    assert len(bot.frames) == 1 + n + 1 and bot.frames[0] == [] and bot.frames[-1] == []
    assert bot.frames[1][0] == ("RELEASE_ALL",)  # the match starts with nothing held
    neutral = Pipe()
    press(neutral, NEUTRAL)
    for frame, sent in zip(console.frames, bot.frames[1:-1], strict=True):
        sent = [c for c in sent if c != ("RELEASE_ALL",)]
        if frame < -39:  # the countdown is never fed to the model: neutral
            assert sent == neutral.frames[0]
    fed = [s for f, s in zip(console.frames, bot.frames[1:-1], strict=True) if f >= -39]
    assert len({tuple(s) for s in fed}) > 1  # the policy's sampled choices vary
    # The loop ran out of frames mid-game: the match is reported, the session is not ok.
    assert lines[0].startswith("match 1: fox (port 1) vs falco (port 2) on ")
    assert lines[1] == "match 1: unfinished at 4-4 in stocks (bot 9%, opponent 11%) after 0:03"
    assert [r.stocks for r in session.matches] == [(4, 4)]
    assert not session.ok and session.ended == "Dolphin stopped sending frames"


@needs_replays
def test_the_loop_is_reproducible_by_seed(fox_policy):
    _, a, _, _ = _replay_session(fox_policy, seed=5)
    _, b, _, _ = _replay_session(fox_policy, seed=5)
    _, c, _, _ = _replay_session(fox_policy, seed=6)
    assert a.frames == b.frames
    assert a.frames != c.frames
