"""World-model families behind one protocol (see :class:`~gym_dream.models.base.WorldModel`)."""

from gym_dream.models.base import State, Transition, WorldModel
from gym_dream.models.dreamer import Dreamer
from gym_dream.models.mdnrnn import MDNRNN
from gym_dream.models.rssm import RSSM

#: family name (as written in model cards) -> class
FAMILIES: dict[str, type[WorldModel]] = {MDNRNN.family: MDNRNN, RSSM.family: RSSM, Dreamer.family: Dreamer}

__all__ = ["FAMILIES", "Dreamer", "MDNRNN", "RSSM", "State", "Transition", "WorldModel"]
