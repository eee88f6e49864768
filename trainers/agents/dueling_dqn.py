"""The dueling Q-network (Wang et al. 2016) for stable-baselines3's DQN, which has none.

A dueling network learns a state's value V(s) and each action's advantage A(s, a) in two streams after a shared
trunk and adds them, Q = V + A - mean_a A. Where every action is worth nearly the same (the Doom dream: one tic of
strafing barely changes what follows; ``benchmarks/ad_hoc/dqn_action_gap.py`` measured advantages a thousandth of Q), a
plain Q-network must carry those small differences inside a large, noisy value; the dueling one learns the value
once per state and the differences on their own.

Use it by name in a DQN recipe: ``--hparams '{"policy": "DuelingMlpPolicy", "policy_kwargs": {"net_arch": [256, 256]}}'``
(``trainers.agents.sb3.sb3_kwargs`` resolves the name). ``net_arch``'s last layer is the width of each stream and the layers
before it the shared trunk: [256, 256] is one shared layer of 256, then a value and an advantage stream of 256 each.
Stored agents name :class:`DuelingDQNPolicy`, which ``trainers.agents.sb3_policy`` loads like SB3's own classes.
"""

from __future__ import annotations

import torch
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn


class DuelingHead(nn.Module):
    """features -> shared trunk (``net_arch[:-1]``) -> value stream and advantage stream (``net_arch[-1]`` wide) -> Q."""

    def __init__(self, features_dim: int, n_actions: int, net_arch: list[int], activation_fn: type[nn.Module]):
        super().__init__()
        if not net_arch:
            raise ValueError("A dueling Q-network needs at least one layer in net_arch (the width of its two streams), e.g. [256, 256].")
        trunk_out = net_arch[-2] if len(net_arch) > 1 else features_dim
        self.trunk = nn.Sequential(*create_mlp(features_dim, -1, list(net_arch[:-1]), activation_fn))
        self.value = nn.Sequential(*create_mlp(trunk_out, 1, [net_arch[-1]], activation_fn))
        self.advantage = nn.Sequential(*create_mlp(trunk_out, n_actions, [net_arch[-1]], activation_fn))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.trunk(features)
        advantage = self.advantage(h)
        return self.value(h) + advantage - advantage.mean(dim=1, keepdim=True)


class DuelingQNetwork(QNetwork):
    """SB3's QNetwork with a :class:`DuelingHead` as its ``q_net``; everything else (features, greedy action) is SB3's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.q_net = DuelingHead(self.features_dim, int(self.action_space.n), list(self.net_arch), self.activation_fn)


class DuelingDQNPolicy(DQNPolicy):
    """SB3's DQNPolicy whose online and target networks are :class:`DuelingQNetwork`."""

    def make_q_net(self) -> DuelingQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return DuelingQNetwork(**net_args).to(self.device)
