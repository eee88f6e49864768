"""World-model families behind one protocol (see :class:`~gym_dream.models.base.WorldModel`)."""

from gym_dream.models.base import State, Transition, WorldModel
from gym_dream.models.dreamer import Dreamer
from gym_dream.models.mdnrnn import MDNRNN
from gym_dream.models.rssm import RSSM

#: family name (as written in model cards) -> class; a new family adds itself with :func:`register_family`
FAMILIES: dict[str, type[WorldModel]] = {}


def register_family(cls: type[WorldModel]) -> type[WorldModel]:
    """Make a world-model family known by its ``family`` name, so a model card naming it loads (usable as a class
    decorator). A name is taken once: registering another class under a known name is refused."""
    if not (isinstance(cls, type) and issubclass(cls, WorldModel)):
        raise TypeError(f"register_family takes a WorldModel subclass, got {cls!r}.")
    name = getattr(cls, "family", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} must set the class attribute `family` (the name model cards use), e.g. family = 'mine'.")
    if FAMILIES.get(name, cls) is not cls:
        raise ValueError(f"The family name {name!r} is taken by {FAMILIES[name].__module__}.{FAMILIES[name].__name__}; pick another.")
    FAMILIES[name] = cls
    return cls


for _family in (MDNRNN, RSSM, Dreamer):
    register_family(_family)

__all__ = ["FAMILIES", "Dreamer", "MDNRNN", "RSSM", "State", "Transition", "WorldModel", "register_family"]
