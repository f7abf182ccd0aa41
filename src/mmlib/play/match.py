"""What the live loop decides from one `GameState`, as pure functions: in a game or in the menus,
which port is the bot's and which its opponent's, how a match ended, and when a slow frame is
worth a warning. They read libmelee `GameState`s only, so replays test them (libmelee's file
console yields the same objects as a live Dolphin).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from mmlib.data.replay import FIRST_PLAYABLE_FRAME

FRAME_BUDGET_S = 1 / 60  # one frame at 60 fps: the time a frame's step + press may take
WARN_EVERY = 600  # frames (10 s of play) between two slow-frame warnings at most


def in_game(state) -> bool:
    """True in a game (sudden death included); False in every menu."""
    from melee import Menu

    return state.menu_state in (Menu.IN_GAME, Menu.SUDDEN_DEATH)


def fixed_ports(state, me: int, opp: int) -> tuple[int, int] | None:
    """(me, opp) when both configured ports are in the game (local play), else None."""
    return (me, opp) if me in state.players and opp in state.players else None


def _code(code: str) -> str:
    # Game Start holds codes in Shift-JIS, possibly full-width: NFKC folds them to ASCII.
    return unicodedata.normalize("NFKC", code).strip().upper()


def detect_ports(state, character, costume: int = 0, code: str = "") -> tuple[int, int] | None:
    """(the bot's port, its opponent's) in a 1v1 online game, or None while they cannot be told.

    Slippi online gives the bot any port. In order: the player whose connect code is the bot's
    own (`code`, from its user.json); libmelee's `port_detector` (the one player with the bot's
    character and costume); the one player with the bot's character. The opponent is the other
    player, whatever its port: not the second-lowest port, which the published netplay script
    took as the bot whenever the bot's port was above 1 (SPEC 5.5).
    """
    from melee.gamestate import port_detector

    players = {int(port): player for port, player in state.players.items()}
    if len(players) != 2:
        return None
    me = 0
    if code:
        mine = [p for p, player in players.items() if _code(player.connectCode) == _code(code)]
        me = mine[0] if len(mine) == 1 else 0
    me = me or int(port_detector(state, character, costume))
    if not me:
        same = [p for p, player in players.items() if player.character == character]
        me = same[0] if len(same) == 1 else 0
    if not me:
        return None
    (opp,) = (p for p in players if p != me)
    return me, opp


def describe(state, me: int, opp: int) -> str:
    """`fox (port 2) vs marth (port 4) on battlefield`, from the libmelee names."""
    a, b = state.players[me].character.name, state.players[opp].character.name
    return f"{a.lower()} (port {me}) vs {b.lower()} (port {opp}) on {state.stage.name.lower()}"


@dataclass(frozen=True)
class MatchResult:
    """How a match stood on its last in-game frame, seen from the bot."""

    stocks: tuple[int, int]  # (bot, opponent)
    percent: tuple[float, float]  # (bot, opponent)
    frames: int  # frames played since the players could act (the countdown's "GO")

    @property
    def outcome(self) -> str:
        """won / lost / draw: more stocks wins; equal stocks, the lower percent (SPEC 5.5)."""
        (s, t), (p, q) = self.stocks, self.percent
        if s != t:
            return "won" if s > t else "lost"
        return "draw" if p == q else ("won" if p < q else "lost")

    def score(self) -> str:
        """`3-1 in stocks (bot 45%, opponent 120%) after 2:13`"""
        (s, t), (p, q) = self.stocks, self.percent
        minutes, seconds = divmod(max(self.frames, 0) // 60, 60)
        return f"{s}-{t} in stocks (bot {p:.0f}%, opponent {q:.0f}%) after {minutes}:{seconds:02d}"

    def line(self) -> str:
        return f"{self.outcome} {self.score()}"


def match_result(state, me: int, opp: int) -> MatchResult:
    """The result on `state`, the last in-game frame of a match."""
    bot, other = state.players[me], state.players[opp]
    return MatchResult(
        stocks=(int(bot.stock), int(other.stock)),
        percent=(float(bot.percent), float(other.percent)),
        frames=int(state.frame) - FIRST_PLAYABLE_FRAME + 1,
    )


class FrameBudget:
    """Counts frames whose processing overran the budget; a warning at most every `every` frames.

    `record(seconds)` returns the warning to print, or None: the first overrun warns at once,
    later ones are summed until `every` frames have passed since the last warning.
    """

    def __init__(self, budget_s: float = FRAME_BUDGET_S, every: int = WARN_EVERY):
        self.budget_s, self.every = budget_s, every
        self.frames = 0  # frames recorded
        self.warned_at: int | None = None  # `frames` at the last warning
        self.over, self.worst = 0, 0.0  # overruns since the last warning, and the slowest

    def record(self, seconds: float) -> str | None:
        self.frames += 1
        if seconds > self.budget_s:
            self.over += 1
            self.worst = max(self.worst, seconds)
        since = self.frames - (self.warned_at or 0)
        if not self.over or (self.warned_at is not None and since < self.every):
            return None
        message = (
            f"{self.over} of the last {since} frames took longer than the "
            f"{self.budget_s * 1e3:.1f} ms frame budget (slowest {self.worst * 1e3:.1f} ms): "
            "the game runs slower than real time"
        )
        self.warned_at, self.over, self.worst = self.frames, 0, 0.0
        return message
