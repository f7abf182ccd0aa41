"""Features for live play: one `GameState` in, the model's input row out, through exactly the
code that built the training shards (`raw.OnlineRaw` -> `build.features` -> `build.pack`)."""

from __future__ import annotations

import numpy as np

from mmlib.data.replay import FIRST_PLAYABLE_FRAME
from mmlib.data.schema import Version
from mmlib.features import build, raw
from mmlib.features.schema import FeatureSchema


class OnlineFeatures:
    """Per-frame features of one perspective (the bot's port as `self`).

    Push every frame from the first one the bot sees; countdown frames (before frame -39) and
    frames missing a player return None, as they never appear in training.
    """

    def __init__(
        self,
        self_port: int,
        opp_port: int,
        schema: FeatureSchema,
        norm: build.Norm,
        version: Version = (3, 18, 0),
    ):
        self.raw = raw.OnlineRaw(self_port, opp_port, version)
        self.schema, self.norm = schema, norm

    def push(self, state, controller: dict | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """(ints (1, 5), floats (1, F)) for this frame, as `build.pack` lays them out.

        `controller`: the raw controller keys (`raw.CONTROLLER_KEYS`) the bot sent for this
        frame; by default the `GameState`'s own controller state (replays).
        """
        row = self.raw.push(state, None if controller is None else {"self_": controller})
        if row is None or state.frame < FIRST_PLAYABLE_FRAME:
            return None
        return build.pack(build.features(row, self.schema, self.norm))
