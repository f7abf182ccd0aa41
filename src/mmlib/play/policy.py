"""The real-time policy: one libmelee `GameState` in per frame, one controller decision out.

Each frame goes through the feature path training used (`OnlineFeatures`: `raw.OnlineRaw` ->
`build.features` -> `build.pack`), then one streaming step of the model (`models.streaming`:
sliding-window attention with a rolling key/value cache, window = the model's max_seq_len), then
one draw per head.

Before the first real frame the context can be prefilled (SPEC "where mmlib departs"):
- `"neutral"` (default): `window - 1` copies of a fixed neutral frame: both players standing at
  the centre of this game's stage with 4 stocks, 0 %, full shield, 2 jumps, no speed, flags 0,
  action STANDING, the controller at rest. Not the published all-ones frame (a dead Fox on FD
  holding every button), a state that never occurs.
- `"none"`: no prefill; the first frames see a short context, as the first positions of every
  training window do.

Sampling (SPEC 5.3): each head draws from softmax(logits / temperature) with a seeded generator;
temperature 0 takes the argmax, and so does a head whose logits or probabilities are not finite.
The temperature may differ per head (a mapping): a cooler button head presses less on noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mmlib.checkpoint.directory import Policy
from mmlib.features import build
from mmlib.features.columns import OLD_NUMERIC
from mmlib.models.bc import HEADS
from mmlib.models.streaming import Stream
from mmlib.play import controller
from mmlib.play.controller import Choice

PREFILLS = ("neutral", "none")
STANDING = 14  # libmelee Action.STANDING
# The neutral mock frame's non-zero raw values (everything else is 0).
NEUTRAL_PLAYER = {"stock": 4.0, "shield_strength": 60.0, "jumps_left": 2.0}


@dataclass(frozen=True)
class Decision:
    choice: Choice  # the sampled classes: what gets pressed
    probs: dict[str, np.ndarray]  # per head, softmax(logits) at temperature 1, (classes,)

    @property
    def greedy(self) -> Choice:
        """The argmax class of every head."""
        return Choice(**{name: int(p.argmax()) for name, p in self.probs.items()})


def head_temperatures(temperature: float | dict[str, float]) -> dict[str, float]:
    """{head: temperature} from one temperature for every head or a mapping of some heads (the
    rest at 1); a ValueError for a negative one or an unknown head."""
    names = [name for name, _ in HEADS]
    if isinstance(temperature, dict):
        unknown = sorted(set(temperature) - set(names))
        if unknown:
            raise ValueError(f"temperature for unknown heads {unknown}; heads: {names}")
        out = {name: float(temperature.get(name, 1.0)) for name in names}
    else:
        out = dict.fromkeys(names, float(temperature))
    for name, t in out.items():
        if not t >= 0:
            raise ValueError(f"temperature {t} for {name} must be >= 0")
    return out


def sample(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    """One class from a head's logits (classes,); argmax at temperature 0 or when not finite."""
    if not torch.isfinite(logits).all():
        return int(torch.nan_to_num(logits, nan=-1e9, posinf=1e9, neginf=-1e9).argmax())
    if temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    if not torch.isfinite(probs).all() or probs.sum() <= 0:
        return int(logits.argmax())
    return int(torch.multinomial(probs, 1, generator=generator))


def neutral_raw(state, self_port: int, opp_port: int) -> dict[str, np.ndarray]:
    """The neutral mock frame as raw columns (one row), on `state`'s stage and characters."""
    row: dict[str, np.ndarray] = {
        "frame": np.array([0], np.int64),
        "stage": np.array([int(state.stage.value)], np.int64),
    }
    rest = controller.sent(controller.NEUTRAL)
    for prefix, port in (("self_", self_port), ("opp_", opp_port)):
        for col in OLD_NUMERIC:
            row[prefix + col.name] = np.array([NEUTRAL_PLAYER.get(col.name, 0.0)], np.float32)
        for flag in ("on_ground", "facing", "invulnerable"):
            row[prefix + flag] = np.zeros(1, np.float32)
        row[prefix + "action"] = np.array([STANDING], np.int64)
        row[prefix + "prev_action"] = np.array([STANDING], np.int64)
        row[prefix + "character"] = np.array([int(state.players[port].character.value)], np.int64)
        for key, value in rest.items():
            row[prefix + key] = np.array([value], bool if isinstance(value, bool) else np.float32)
    return row


class StreamingPolicy:
    """One bot: push every frame's `GameState`, get its controller decision.

    `step(state, controller)`: `controller` is what the bot sent on the previous frame (the dict
    `controller.press` returned), which produced this frame; None reads it from the `GameState`
    (a replay, teacher-forced). Returns None for frames the model is not fed (the countdown
    before frame -39, a player missing). Start a new object for every game.
    """

    def __init__(
        self,
        policy: Policy,
        self_port: int,
        opp_port: int,
        *,
        temperature: float | dict[str, float] = 1.0,
        seed: int = 0,
        prefill: str = "neutral",
        version=(3, 18, 0),
    ):
        if prefill not in PREFILLS:
            raise ValueError(f"prefill {prefill!r}: one of {PREFILLS}")
        self.policy, self.ports = policy, (self_port, opp_port)
        self.temperature, self.prefill = head_temperatures(temperature), prefill
        self.features = policy.features(self_port, opp_port, version)
        self.stream = Stream(policy.model)
        self.generator = torch.Generator().manual_seed(seed)
        self.device = policy.device

    def _tensor(self, ints: np.ndarray, floats: np.ndarray):
        return (
            torch.from_numpy(ints.astype(np.int64)).to(self.device)[None],
            torch.from_numpy(floats).to(self.device)[None],
        )

    def _prefill(self, state) -> None:
        feats = build.features(
            neutral_raw(state, *self.ports), self.policy.schema, self.policy.norm
        )
        ints, floats = build.pack(feats)
        n = self.stream.window - 1
        self.stream.extend(*self._tensor(np.repeat(ints, n, 0), np.repeat(floats, n, 0)))

    def logits(self, state, controller: dict | None = None) -> dict[str, torch.Tensor] | None:
        """This frame's logits {head: (classes,)} on the CPU, or None if the frame is not fed."""
        row = self.features.push(state, controller)
        if row is None:
            return None
        if self.stream.frames == 0 and self.prefill == "neutral":
            self._prefill(state)
        out = self.stream.extend(*self._tensor(*row))
        return {name: v[0, -1].float().cpu() for name, v in out.items()}

    def step(self, state, controller: dict | None = None) -> Decision | None:
        logits = self.logits(state, controller)
        if logits is None:
            return None
        classes = {
            name: sample(logits[name], self.temperature[name], self.generator) for name, _ in HEADS
        }
        probs = {name: torch.softmax(v, -1).numpy() for name, v in logits.items()}
        return Decision(Choice(**classes), probs)
