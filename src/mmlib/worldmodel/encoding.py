"""How a frame of Melee becomes numbers for a world model, and what the model must predict.

Encodings (SPEC 6.1), per player, then both players and the stage:

    v1    4 continuous + 3 binary + 13 controller floats; action 400->32, jumps 8->4  56
    v2    + 5 velocities, state_age, hitlag, stocks; character 33->8; stage 33->4  72 (148 a frame)
    v2.1  + combo; l_cancel 3->2, hurtbox 3->2, ground 32->4, last_attack 64->8     89 (182 a frame)

`state_age_embed` moves state_age from the floats to an embedding (vocab 150 -> 8; the published
exp 1a, their best encoding change). Floats are stored already scaled (the `SCALE` table), so a
model reads them as they are and a rollout adds predicted deltas in the same units.

Contracts (SPEC 6.1.5). A *clip* is `W + lead` consecutive frames; position i of the model reads
frames up to i and predicts frame i + lead:
- `input` (v2.2, the default, lead 1): the controller of the predicted frame is an input, so the
  model learns the game's response to a known input rather than guessing the player's decision;
- `state` (v1 to v2.1, lead 2): no controller from the future, and the target is two frames on.

Targets (SPEC 6.2.1): deltas of the core floats and velocities, absolute dynamics, binaries, and
the categoricals; state_age, character, stage and the controller are never predicted. A model may
own only some fields (`head_columns`, `restrict`): the subsystem models of `subsystems.py`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import torch

from mmlib.errors import UsageError

VERSIONS = ("v1", "v2", "v2.1")
CONTRACTS = {"input": 1, "state": 2}  # contract -> lead (frames from the last context frame)

SCALE = {  # stored value = game value * scale (SPEC 6.1.2-6.1.4; after slippi-ai's embed.py)
    "percent": 0.01,
    "x": 0.05,
    "y": 0.05,
    "shield": 0.01,
    "speed_air_x": 0.05,
    "speed_y": 0.05,
    "speed_ground_x": 0.05,
    "speed_attack_x": 0.05,
    "speed_attack_y": 0.05,
    "state_age": 0.01,
    "hitlag": 0.1,
    "stocks": 0.25,
    "combo": 0.1,
}
CORE = ("percent", "x", "y", "shield")
VELOCITY = ("speed_air_x", "speed_y", "speed_ground_x", "speed_attack_x", "speed_attack_y")
BINARY = ("facing", "invulnerable", "on_ground")
CONTROLLER = ("main_x", "main_y", "c_x", "c_y", "shoulder", "a", "b", "x_button", "y_button")
CONTROLLER += ("z", "l", "r", "d_up")
VOCAB = {  # categorical -> (vocabulary, embedding dim); values are clipped into the vocabulary
    "action": (400, 32),
    "jumps": (8, 4),
    "character": (33, 8),
    "l_cancel": (3, 2),
    "hurtbox": (3, 2),
    "ground": (32, 4),
    "last_attack": (64, 8),
    "state_age": (150, 8),
}
STAGE_VOCAB = (33, 4)
# Physical bounds a rollout is clamped to, in game units (SPEC 6.3.3); stored as value * scale.
CLAMPS = {
    "percent": (0, 999),
    "x": (-300, 300),
    "y": (-200, 300),
    "shield": (0, 60),
    "stocks": (0, 4),
    "hitlag": (0, 50),
    "combo": (0, 50),
}
FLOAT_HEADS = ("continuous", "velocity", "dynamics", "binary")
# A derived categorical target: the shield/grab state, a coarsening of the action (libmelee ids).
# No frame column holds it; the shield-and-grab subsystem (`subsystems.py`) predicts it.
GUARD_STATES = ("none", "shield", "shield_break", "grabbing", "grabbed")
_GUARD_SPANS = {1: [(178, 182)], 2: [(205, 211)], 3: [(212, 222)], 4: [(223, 232), (239, 243)]}
GUARD = torch.zeros(VOCAB["action"][0], dtype=torch.int64)  # action id -> guard state
for _state, _spans in _GUARD_SPANS.items():
    for _a, _b in _spans:
        GUARD[_a : _b + 1] = _state


@dataclass(frozen=True)
class EncodingConfig:
    version: str = "v2"
    contract: str = "input"
    state_age_embed: bool = False  # state_age as an embedding (150 -> 8) instead of a float
    context: int = 10  # K: frames of context (the MLP's window; the Mamba-2's training clip)

    def __post_init__(self):
        if self.version not in VERSIONS:
            raise UsageError(f"encoding {self.version!r} is not one of {', '.join(VERSIONS)}")
        if self.contract not in CONTRACTS:
            raise UsageError(f"contract {self.contract!r} is not one of {', '.join(CONTRACTS)}")
        if self.state_age_embed and self.version == "v1":
            raise UsageError("v1 has no state_age to embed")
        if self.context < 1:
            raise UsageError(f"context must be at least 1 frame, not {self.context}")

    @property
    def lead(self) -> int:
        return CONTRACTS[self.contract]

    # --- the per-player float row: [continuous, binary, controller] ------------------------
    @cached_property
    def continuous(self) -> tuple[str, ...]:
        if self.version == "v1":
            return CORE
        age = () if self.state_age_embed else ("state_age",)
        combo = ("combo",) if self.version == "v2.1" else ()
        return CORE + VELOCITY + age + ("hitlag", "stocks") + combo

    @cached_property
    def dynamics(self) -> tuple[str, ...]:
        """Floats predicted as absolute values (SPEC 6.2.1)."""
        if self.version == "v1":
            return ()
        return ("hitlag", "stocks") + (("combo",) if self.version == "v2.1" else ())

    @cached_property
    def floats(self) -> tuple[str, ...]:
        return self.continuous + BINARY + CONTROLLER

    @cached_property
    def ints(self) -> tuple[str, ...]:
        if self.version == "v1":
            return ("action", "jumps")
        combat = ("l_cancel", "hurtbox", "ground", "last_attack") if self.version == "v2.1" else ()
        age = ("state_age",) if self.state_age_embed else ()
        return ("action", "jumps", "character") + combat + age

    @cached_property
    def predicted_ints(self) -> tuple[str, ...]:
        """Categoricals with a classification head (never character or state_age)."""
        return tuple(n for n in self.ints if n not in ("character", "state_age"))

    @property
    def has_stage(self) -> bool:
        return self.version != "v1"

    def fi(self, name: str) -> int:
        """Index of a float column in the per-player row."""
        return self.floats.index(name)

    def ii(self, name: str) -> int:
        """Index of an int column in the per-player row."""
        return self.ints.index(name)

    @cached_property
    def ctrl_slice(self) -> slice:
        start = self.fi(CONTROLLER[0])
        return slice(start, start + len(CONTROLLER))

    @property
    def player_dim(self) -> int:
        return len(self.floats) + sum(VOCAB[n][1] for n in self.ints)

    @property
    def frame_dim(self) -> int:
        return 2 * self.player_dim + (STAGE_VOCAB[1] if self.has_stage else 0)

    @property
    def ctrl_dim(self) -> int:
        """Width of the next-frame controller input (both players); 0 under the state contract."""
        return 2 * len(CONTROLLER) if self.contract == "input" else 0

    @cached_property
    def float_groups(self) -> dict[str, tuple[str, ...]]:
        """Each float head and the per-player fields its columns hold (player 0's, then 1's)."""
        groups = {"continuous": CORE}
        if self.version != "v1":
            groups |= {"velocity": VELOCITY, "dynamics": self.dynamics}
        return groups | {"binary": BINARY}

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """Every predicted per-player field, and the derived `guard`: what a model can own."""
        return sum(self.float_groups.values(), ()) + self.predicted_ints + ("guard",)

    def head_columns(self, owns: tuple[str, ...] = ()) -> dict[str, list[int] | None]:
        """The heads a model owning `owns` (empty: every field but `guard`) has, each with the
        columns of the full head it predicts (None: a whole categorical head)."""
        unknown = sorted(set(owns) - set(self.fields))
        if unknown:
            raise UsageError(f"{self.version} has no predicted fields {unknown}")
        owns = owns or self.fields[:-1]
        heads: dict[str, list[int] | None] = {}
        for head, names in self.float_groups.items():
            cols = [p * len(names) + j for p in (0, 1) for j, n in enumerate(names) if n in owns]
            if cols:
                heads[head] = cols
        return heads | {n: None for n in (*self.predicted_ints, "guard") if n in owns}

    def head_sizes(self, owns: tuple[str, ...] = ()) -> dict[str, int]:
        """Output width of each head (both players); the categoricals are 2 x vocabulary."""
        vocab = {n: VOCAB[n][0] for n in self.predicted_ints} | {"guard": len(GUARD_STATES)}
        return {
            head: len(cols) if cols is not None else 2 * vocab[head]
            for head, cols in self.head_columns(owns).items()
        }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------
# Clips -> model inputs and targets. A clip is floats (B, C, 2, F), ints (B, C, 2, I) and
# stage (B,), with C = W + lead frames; position i reads frames <= i and predicts i + lead.


def next_ctrl(cfg: EncodingConfig, floats: torch.Tensor) -> torch.Tensor | None:
    """The controller of each predicted frame, both players: (B, W, 26), or None (state)."""
    if cfg.contract != "input":
        return None
    ctrl = floats[:, cfg.lead :, :, cfg.ctrl_slice]
    return ctrl.flatten(-2)


def targets(cfg: EncodingConfig, floats: torch.Tensor, ints: torch.Tensor) -> dict:
    """Every head's target at every position: float groups (B, W, n) and ints (B, W, 2)."""
    lead = cfg.lead
    new, old = floats[:, lead:], floats[:, lead - 1 : -1]

    def cols(x, names):
        return x[..., [cfg.fi(n) for n in names]].flatten(-2)  # (B, W, 2 * len(names))

    out = {"continuous": cols(new, CORE) - cols(old, CORE)}
    if cfg.version != "v1":
        out["velocity"] = cols(new, VELOCITY) - cols(old, VELOCITY)
        out["prev_velocity"] = cols(old, VELOCITY)  # what dead reckoning moves by
        out["dynamics"] = cols(new, cfg.dynamics)
        out["prev_dynamics"] = cols(old, cfg.dynamics)
    out["binary"] = cols(new, BINARY)
    out["prev_binary"] = cols(old, BINARY)
    for name in cfg.predicted_ints:
        out[name] = ints[:, lead:, :, cfg.ii(name)]
        out[f"prev_{name}"] = ints[:, lead - 1 : -1, :, cfg.ii(name)]  # the frame before
    out["prev_action"] = ints[:, : ints.shape[1] - lead, :, cfg.ii("action")]  # last context
    out["guard"] = GUARD.to(ints.device)[out["action"]]
    return out


def restrict(cfg: EncodingConfig, tgt: dict, owns: tuple[str, ...]) -> dict:
    """The targets of a model that owns only `owns`: its heads' columns, and the `prev_*`."""
    out = {k: v for k, v in tgt.items() if k.startswith("prev_")}
    for head, cols in cfg.head_columns(owns).items():
        out[head] = tgt[head] if cols is None else tgt[head][..., cols]
    return out
