"""The settings of a live play session, every one checked before Dolphin starts.

`vs_cpu_settings` and `netplay_settings` take the command line's values and return a frozen
settings object, or raise `UsageError` with one line naming the argument and what was expected.
Nothing here starts a process or writes a file; the one libmelee call, `get_exe_path`, only looks
for the executable (Dolphin itself is first run by `melee.Console`, in the runner).

Names are case-insensitive and ignore spaces, `_`, `-`, `.`, `'` and `&`: a character is its mmlib
slug (`fox`, `falcon`, `ics`), its libmelee name (`CPTFALCON`, `POPO`) or its display name
(`Captain Falcon`); a stage is one of the six legal stages by libmelee name
(`FINAL_DESTINATION`, `battlefield`) or display name (`Yoshi's Story`).

Connect codes (the rule enforced here, kept simple): letters, `#`, digits, at most 8 characters in
all (the game's code field holds 8). The Slippi Launcher hands out 2-4 letter tags, but older
codes are longer (`NIKKI#0` in a test replay), so any tag length that fits is accepted. Lower
case is upper-cased: the game's name-entry screen has capitals only.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mmlib.data.ids import CHARACTERS, LEGAL_STAGES, STAGES
from mmlib.errors import UsageError

if TYPE_CHECKING:
    from mmlib.checkpoint.directory import Policy

CSS_CHARACTERS = 26  # external ids 0-25: the characters on the character-select screen
PORTS = (1, 2, 3, 4)
CPU_LEVELS = range(1, 10)
CONNECT_CODE = re.compile(r"[A-Z]+#[0-9]+")
CONNECT_CODE_LENGTH = 8
CONNECT_TIMEOUT_S = 60.0  # default time to keep trying to connect to Dolphin's Slippi server


def _key(name: str) -> str:
    return re.sub(r"[\s_\-.'&]", "", name).lower()


def _character_aliases() -> dict[str, str]:
    import melee

    aliases = {}
    for c in CHARACTERS.values():
        if c.external < CSS_CHARACTERS:
            for name in (c.slug, c.name, melee.Character(c.internal).name):
                aliases[_key(name)] = c.slug
    return aliases


def _stage_aliases() -> dict[str, str]:
    import melee

    aliases = {}
    for external, internal in LEGAL_STAGES.items():
        canonical = melee.Stage(internal).name.lower()
        for name in (canonical, STAGES[external]):
            aliases[_key(name)] = canonical
    return aliases


def character_slug(name: str, flag: str = "--character") -> str:
    """The mmlib slug of a playable character name; UsageError listing the slugs otherwise."""
    aliases = _character_aliases()
    if _key(name) not in aliases:
        valid = ", ".join(sorted(set(aliases.values())))
        raise UsageError(f"{flag} {name!r}: unknown character; expected one of {valid}")
    return aliases[_key(name)]


def stage_name(name: str) -> str:
    """The lower-case libmelee `Stage` name of a legal stage; UsageError listing them otherwise."""
    aliases = _stage_aliases()
    if _key(name) not in aliases:
        valid = ", ".join(sorted(set(aliases.values())))
        raise UsageError(f"--stage {name!r}: not one of the six legal stages ({valid})")
    return aliases[_key(name)]


def melee_character(slug: str):
    """libmelee's `Character` for an mmlib slug (Ice Climbers: POPO, the one the menus pick)."""
    import melee

    (internal,) = {c.internal for c in CHARACTERS.values() if c.slug == slug}
    return melee.Character(internal)


def melee_stage(name: str):
    """libmelee's `Stage` for a name `stage_name` returned."""
    import melee

    return melee.Stage[name.upper()]


def parse_connect_code(code: str) -> str:
    """The upper-cased code; UsageError unless it looks like `ABCD#123` (module docstring)."""
    upper = code.strip().upper()
    if not CONNECT_CODE.fullmatch(upper) or len(upper) > CONNECT_CODE_LENGTH:
        raise UsageError(
            f"--connect-code {code!r}: expected letters, '#', digits, at most "
            f"{CONNECT_CODE_LENGTH} characters in all (e.g. ABCD#123)"
        )
    return upper


def dolphin_executable(path: Path) -> Path:
    """The Slippi Dolphin executable libmelee would run for `--dolphin-path`, without running it.

    `path` is the executable itself or its install folder; libmelee finds the executable in a
    folder whose path contains `netplay` (Slippi Launcher's `netplay/`, or `netplay-beta/` for
    mainline builds) under its platform's name (`Slippi_Online-x86_64.AppImage` on Linux).
    """
    from melee.console import get_exe_path

    if not path.exists():
        raise UsageError(f"--dolphin-path {path}: no such file or folder")
    try:
        exe = Path(get_exe_path(str(path)))
    except ValueError:  # libmelee tells mainline from Ishiiruka by the folder's name
        raise UsageError(
            f"--dolphin-path {path}: not a Slippi Dolphin folder (libmelee needs `netplay` in "
            "the folder's path, as in Slippi Launcher's netplay/ or netplay-beta/) nor the "
            "executable itself"
        ) from None
    except FileNotFoundError as e:
        raise UsageError(f"--dolphin-path {path}: {e}") from None
    except NotImplementedError as e:
        raise UsageError(f"--dolphin-path: {e}") from None
    if not os.access(exe, os.X_OK):
        raise UsageError(f"--dolphin-path: {exe} is not executable")
    return exe


def iso_file(path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"--iso-path {path}: no such file (expected a Melee 1.02 NTSC ISO)")
    return path


def slippi_home(home: Path | None, dolphin_path: Path) -> tuple[Path, str]:
    """(the Dolphin user folder holding `Slippi/user.json`, the bot's own connect code).

    `home` may be that folder or its `Slippi/` folder; None takes libmelee's default home for
    the install (e.g. ~/.config/SlippiOnline for Linux Ishiiruka builds).
    """
    flag = "--dolphin-home"
    if home is None:
        from melee.console import _default_home_path, _is_mainline  # libmelee's own lookup

        try:
            home = Path(_default_home_path(str(dolphin_path), _is_mainline(str(dolphin_path))))
        except (ValueError, FileNotFoundError, NotImplementedError):
            raise UsageError(
                "netplay needs the bot's Slippi user.json: pass --dolphin-home (the Dolphin "
                "user folder that holds Slippi/user.json)"
            ) from None
        flag = "no --dolphin-home given, and libmelee's default"
    if home.name == "Slippi" and (home / "user.json").is_file():
        home = home.parent
    user_json = home / "Slippi" / "user.json"
    if not user_json.is_file():
        raise UsageError(
            f"{flag} {home} has no Slippi/user.json (log in once with the Slippi Launcher, or "
            "pass the Dolphin user folder that holds it)"
        )
    try:
        user = json.loads(user_json.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{user_json}: not valid JSON ({e})") from None
    code = (user.get("connectCode") if isinstance(user, dict) else None) or ""
    return home, str(code).upper()


def _device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available here (use cpu)")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UsageError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    return device


def _policy(checkpoint: Path, slug: str, device: str) -> Policy:
    """The loaded policy, after checking it was trained for `slug` (its metadata.json)."""
    from mmlib.checkpoint.directory import load_policy

    try:
        policy = load_policy(checkpoint, device)
    except UsageError as e:
        raise UsageError(f"--checkpoint: {e}") from None
    trained = policy.metadata.get("character") or policy.metadata.get("melee_enum")
    if trained is not None:
        try:
            trained_slug = character_slug(str(trained))
        except UsageError:
            raise UsageError(
                f"--checkpoint {checkpoint}: metadata.json names an unknown character {trained!r}"
            ) from None
        if trained_slug != slug:
            raise UsageError(
                f"--character {slug}: the checkpoint {checkpoint} was trained for {trained_slug}"
            )
    return policy


@dataclass(frozen=True, kw_only=True)
class BotSettings:
    """What every live session needs: the bot, the emulator, the game."""

    checkpoint: Path  # the policy directory (`load_policy`)
    policy: Policy = field(repr=False, compare=False)  # loaded from it, on `device`
    device: str  # torch device of the policy ("cpu", "cuda")
    dolphin_path: Path  # as given: the install folder or the executable (`Console(path=...)`)
    dolphin_exe: Path  # the Slippi Dolphin executable libmelee will run
    iso_path: Path  # the Melee ISO
    character: str  # the bot's character, mmlib slug (e.g. "fox")
    stage: str  # lower-case libmelee `Stage` name (e.g. "final_destination")
    temperature: float  # sampling temperature of the stick and shoulder heads, > 0 (SPEC 5.3)
    button_temperature: float  # the button head's, > 0: cooler presses less on noise (chatter)
    seed: int  # sampling seed of the first match (match i, from 0, uses seed + i)
    replay_dir: Path  # where Dolphin saves the session's .slp replays (absolute)
    connect_timeout_s: float  # keep trying to connect to Dolphin's Slippi server this long, > 0

    @property
    def temperatures(self) -> dict[str, float]:
        """Per head, as `StreamingPolicy` takes them."""
        return {"shoulder": self.temperature, "c": self.temperature, "main": self.temperature,
                "button": self.button_temperature}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class VsCpuSettings(BotSettings):
    cpu_character: str  # the CPU's character, mmlib slug
    cpu_level: int  # 1-9
    port: int  # the bot's controller port, 1-4
    cpu_port: int  # the CPU's controller port, 1-4, not `port`


@dataclass(frozen=True, kw_only=True)
class NetplaySettings(BotSettings):
    connect_code: str  # the opponent's code, upper case (e.g. "ABCD#123")
    dolphin_home: Path  # the Dolphin user folder holding Slippi/user.json (copied per session)
    own_code: str  # the bot's code from that user.json ("" if absent): finds its port in game
    max_matches: int  # matches to play before leaving; -1: no limit
    join_timeout_s: float | None  # no game this long in the menus: leave, > 0; None: wait for ever


def _temperature(temperature: float, flag: str = "--temperature") -> float:
    if not (math.isfinite(temperature) and temperature > 0):
        raise UsageError(f"{flag} {temperature}: must be a number > 0")
    return float(temperature)


def _seconds(seconds: float, flag: str) -> float:
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"{flag} {seconds}: must be a number of seconds > 0")
    return float(seconds)


def _button_temperature(button_temperature: float | None, temperature: float) -> float:
    """The button head's temperature: `--temperature` unless given. A cool button head presses
    at the human's rate teacher-forced, but a free-running bot (live play) then hardly presses
    at all (research-notes/2026-12-06-yardsticks.md), so it is not cooled by default."""
    if button_temperature is None:
        return temperature
    return _temperature(button_temperature, "--button-temperature")


def _launch(
    dolphin_path: Path,
    iso_path: Path,
    device: str | None,
    replay_dir: Path,
    connect_timeout: float | None,
) -> dict:
    """The emulator's paths, how long to wait for it and the torch device, checked."""
    dolphin_path = Path(dolphin_path).expanduser()
    if connect_timeout is None:
        connect_timeout = CONNECT_TIMEOUT_S
    return dict(
        connect_timeout_s=_seconds(connect_timeout, "--connect-timeout"),
        dolphin_path=dolphin_path,
        dolphin_exe=dolphin_executable(dolphin_path),
        iso_path=iso_file(Path(iso_path).expanduser()),
        device=_device(device),
        replay_dir=Path(replay_dir).expanduser().absolute(),
    )


def vs_cpu_settings(
    *,
    checkpoint: Path,
    dolphin_path: Path,
    iso_path: Path,
    character: str,
    cpu_character: str,
    cpu_level: int,
    stage: str,
    temperature: float = 1.0,
    button_temperature: float | None = None,
    seed: int = 0,
    port: int = 1,
    cpu_port: int = 2,
    device: str | None = None,
    replay_dir: Path = Path("runs/play"),
    connect_timeout: float | None = None,
) -> VsCpuSettings:
    """Every `mmlib play vs-cpu` argument checked and resolved, cheapest first (the policy is
    loaded last); UsageError with one line naming the first bad one."""
    slug = character_slug(character)
    cpu_slug = character_slug(cpu_character, "--cpu-character")
    if cpu_slug == "sheik":
        raise UsageError("--cpu-character sheik: libmelee's menus cannot make a CPU pick Sheik")
    stage = stage_name(stage)
    if cpu_level not in CPU_LEVELS:
        raise UsageError(f"--cpu-level {cpu_level}: expected 1-9")
    for flag, value in (("--port", port), ("--cpu-port", cpu_port)):
        if value not in PORTS:
            raise UsageError(f"{flag} {value}: expected 1-4")
    if port == cpu_port:
        raise UsageError(f"--port and --cpu-port are both {port}: the CPU needs its own port")
    temperature = _temperature(temperature)
    button_temperature = _button_temperature(button_temperature, temperature)
    launch = _launch(dolphin_path, iso_path, device, replay_dir, connect_timeout)
    checkpoint = Path(checkpoint).expanduser()
    return VsCpuSettings(
        checkpoint=checkpoint,
        policy=_policy(checkpoint, slug, launch["device"]),
        **launch,
        character=slug,
        stage=stage,
        temperature=temperature,
        button_temperature=button_temperature,
        seed=int(seed),
        cpu_character=cpu_slug,
        cpu_level=cpu_level,
        port=port,
        cpu_port=cpu_port,
    )


def netplay_settings(
    *,
    checkpoint: Path,
    dolphin_path: Path,
    iso_path: Path,
    character: str,
    stage: str,
    connect_code: str,
    dolphin_home: Path | None = None,
    temperature: float = 1.0,
    button_temperature: float | None = None,
    seed: int = 0,
    max_matches: int = 1,
    join_timeout: float | None = None,
    device: str | None = None,
    replay_dir: Path = Path("runs/play"),
    connect_timeout: float | None = None,
) -> NetplaySettings:
    """Every `mmlib play netplay` argument checked and resolved, cheapest first (the policy is
    loaded last); UsageError with one line naming the first bad one."""
    slug = character_slug(character)
    if slug == "zelda":  # libmelee's menus raise NotImplementedError for her online
        raise UsageError("--character zelda: libmelee's menus cannot pick Zelda in netplay")
    stage = stage_name(stage)
    code = parse_connect_code(connect_code)
    if max_matches == 0 or max_matches < -1:
        raise UsageError(f"--max-matches {max_matches}: expected a count >= 1, or -1 (no limit)")
    if join_timeout is not None:
        join_timeout = _seconds(join_timeout, "--join-timeout")
    temperature = _temperature(temperature)
    button_temperature = _button_temperature(button_temperature, temperature)
    launch = _launch(dolphin_path, iso_path, device, replay_dir, connect_timeout)
    home = None if dolphin_home is None else Path(dolphin_home).expanduser()
    home, own_code = slippi_home(home, launch["dolphin_path"])
    if own_code == code:
        raise UsageError(f"--connect-code {code}: that is the bot's own code (in its user.json)")
    checkpoint = Path(checkpoint).expanduser()
    return NetplaySettings(
        checkpoint=checkpoint,
        policy=_policy(checkpoint, slug, launch["device"]),
        **launch,
        character=slug,
        stage=stage,
        temperature=temperature,
        button_temperature=button_temperature,
        seed=int(seed),
        connect_code=code,
        dolphin_home=home,
        own_code=own_code,
        max_matches=max_matches,
        join_timeout_s=join_timeout,
    )
