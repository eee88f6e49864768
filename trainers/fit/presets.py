"""Network sizes and budgets as plain data: what ``fit`` (every family), the PlaNet loop and the CEM planner read.

:data:`TINY` is the one tiny preset (dreamerv3's ``debug`` block): it shrinks every network and budget so
tests, smoke runs and quick recipe checks take seconds on two CPU cores. Each family's table has it under
``"tiny"``; nothing else defines a tiny size.
"""

from __future__ import annotations

from typing import Any

#: the one tiny preset, per part: MDN-RNN fit, RSSM (fit and PlaNet loop), CEM planner, dreamer fit
TINY: dict[str, dict[str, Any]] = {
    "mdnrnn": dict(z_dim=8, hidden=16, mixtures=2, head_hidden=8, vae_channels=[4, 8, 8, 16],
                   vae_epochs=2, vae_batch=16, rnn_epochs=3, rnn_batch=8, seq_len=16, lr=3e-3, termination_weight=1.0, end_weight=1.0),
    "rssm": dict(deter=16, stoch=4, hidden=16, cnn_channels=[4, 8, 8, 16], batch=4, chunk=8, train_steps=3, updates=30, lr=1e-3),
    "cem": dict(horizon=4, iterations=2, candidates=16, top_k=4),
    "dreamer": dict(deter=16, stoch=4, classes=4, hidden=16, units=16, layers=1, cnn_channels=[4, 8, 8, 16], batch=4, chunk=8, updates=30,
                    lr=1e-3),
}

#: ``gym-dream fit --family mdnrnn``: World Models' sizes (vector data gets :data:`VECTOR_DEFAULTS` on top)
MDNRNN_PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(z_dim=32, hidden=256, mixtures=5, head_hidden=64, vae_channels=[32, 64, 128, 256],
                    vae_epochs=10, vae_batch=256, rnn_epochs=60, rnn_batch=64, seq_len=64, lr=1e-3, termination_weight=1.0, end_weight=1.0),
    "tiny": TINY["mdnrnn"],
}

#: low-dimensional vector data (CartPole): short episodes, cheap steps, so smaller batches and more epochs
VECTOR_DEFAULTS: dict[str, Any] = dict(rnn_batch=16, seq_len=32, rnn_epochs=200)

#: the RSSM's sizes and budgets: ``batch`` x ``chunk`` windows per update, ``train_steps`` updates per collected
#: episode in the PlaNet loop, ``updates`` in all for ``gym-dream fit --family rssm``, ``planner`` the CEM preset
RSSM_PRESETS: dict[str, dict[str, Any]] = {
    # the paper: 50 x 50 chunks, C = 100 updates per episode, 200/30/200 state sizes
    "planet": dict(deter=200, stoch=30, hidden=200, batch=50, chunk=50, train_steps=100, updates=100_000, lr=1e-3, planner="planet"),
    # what a 2-core CPU runs at a useful speed: PlaNet's state sizes and conv depth, half its conv widths (16-32-64-128
    # against 32-64-128-256: about a quarter of the conv FLOPs; vector models have no convs), 16 x 32 chunks, C = 50
    "cpu": dict(deter=200, stoch=30, hidden=200, cnn_channels=[16, 32, 64, 128], batch=16, chunk=32, train_steps=50, updates=5_000, lr=1e-3,
                planner="cpu"),
    "tiny": {**TINY["rssm"], "planner": "tiny"},
}

#: ``gym-dream fit --family dreamer``: sizes and budgets only. Everything else is DreamerV3's one set for every env
#: (gym_dream/models/dreamer_loss.py: loss weights, free bits; unimix 0.01, 255 reward bins) plus Adam and a gradient clip.
#: lr 3e-4 (DreamerV3: 4e-5 with LaProp over far more updates): on 10k random CartPole steps with the default sizes, after
#: 300 updates held-out reward MSE 0.0003 against 0.029 at 1e-4, the held-out loss lower at every checkpoint (1e-3 untried).
_DREAMER_OPTIM = dict(lr=3e-4, eps=1e-8, grad_clip=100.0, blocks=1)
DREAMER_PRESETS: dict[str, dict[str, Any]] = {
    # what a 2-core CPU fits in minutes on a vector env (1.25M weights for CartPole, batches of 16 x 32 steps)
    "default": dict(deter=256, stoch=16, classes=16, hidden=256, units=256, layers=1, cnn_channels=[32, 64, 128, 256], batch=16, chunk=32,
                    updates=1_500, **_DREAMER_OPTIM),
    # narrower networks and fewer updates
    "small": dict(deter=256, stoch=16, classes=8, hidden=128, units=128, layers=1, cnn_channels=[16, 32, 64, 128], batch=16, chunk=32,
                  updates=1_000, **_DREAMER_OPTIM),
    "tiny": {**_DREAMER_OPTIM, **TINY["dreamer"]},
}

#: the CEM planner: PlaNet's (about 1.6 s per action on a 2-core CPU) and a lighter one for CPUs
CEM_PRESETS: dict[str, dict[str, Any]] = {
    "planet": dict(horizon=12, iterations=10, candidates=1000, top_k=100),
    "cpu": dict(horizon=12, iterations=5, candidates=250, top_k=25),
    "tiny": TINY["cem"],
}

#: the CEM planner's sample-efficient options (trainers/planning/icem.py): iCEM at about 1/5 and 1/10 of the cpu preset's
#: model steps per decision (2,916 and 1,548 against 15,000) and MPPI's weights at 1/5 (3,000); results/planner.md
ICEM_PRESETS: dict[str, dict[str, Any]] = {
    "icem": dict(horizon=12, iterations=3, candidates=96, top_k=10, noise_beta=2.0, population_decay=1.25, keep_elites=0.3, warm_start=True,
                 execute="best"),
    "icem-small": dict(horizon=12, iterations=3, candidates=50, top_k=8, noise_beta=2.0, population_decay=1.25, keep_elites=0.3,
                       warm_start=True, execute="best"),
    "mppi": dict(horizon=12, iterations=2, candidates=125, top_k=125, weighting="mppi", temperature=0.5, warm_start=True),
}


def preset(table: dict[str, dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    """A copy of ``table[name]``, or a ValueError naming the choices."""
    if name not in table:
        raise ValueError(f"Unknown {what} preset {name!r}; choose from {sorted(table)}.")
    return dict(table[name])


#: the valid range of each numeric ``fit`` argument: out-of-range values are refused when the config is made,
#: before any work ("integer >= 1", "number > 0", "number in [0, 1)": the lower bound included, the upper not)
FIT_RANGES: dict[str, str] = {
    **{k: "integer >= 1" for k in ("bank_size", "seq_len", "rnn_batch", "vae_batch", "vae_frames", "max_episodes", "threads", "z_dim",
                                   "hidden", "mixtures", "members", "deter", "stoch", "classes", "dream_horizon")},
    **{k: "integer >= 0" for k in ("head_hidden", "vae_epochs", "rnn_epochs", "updates", "overshooting")},
    **{k: "number > 0" for k in ("lr", "end_weight", "grad_clip")},
    **{k: "number >= 0" for k in ("termination_weight", "rnn_minutes", "free_nats")},
    "val_fraction": "number in [0, 1)",
}

#: ``fit`` options only some families read (refused for the others; None or 0 is "not given")
RSSM_ONLY = ("deter", "stoch", "updates")  # rssm and dreamer
DREAMER_ONLY = ("classes", "starts", "dream_horizon")
MDNRNN_ONLY = ("z_dim", "mixtures", "head_hidden", "residual", "vae_epochs", "rnn_epochs", "vae_batch", "vae_frames", "vae_channels",
               "termination_weight", "end_weight", "init", "dropout")


def _holds(v: float, condition: str) -> bool:
    if condition.startswith("in ["):
        low, high = condition[4:-1].split(", ")
        return float(low) <= v < float(high)
    op, bound = condition.split(" ")
    return v >= float(bound) if op == ">=" else v > float(bound)


def check_ranges(cfg: Any, ranges: dict[str, str], command: str) -> None:
    """A ValueError naming the option and its range for the first field of ``cfg`` outside ``ranges`` (None is unset)."""
    for name, rule in ranges.items():
        v = getattr(cfg, name, None)
        if v is None:
            continue
        kind, _, condition = rule.partition(" ")
        number = not isinstance(v, bool) and isinstance(v, int if kind == "integer" else (int, float))
        if not (number and _holds(float(v), condition)):
            article = "an" if kind == "integer" else "a"
            raise ValueError(f"{command} --{name.replace('_', '-')} must be {article} {rule}, got {v!r} (the {name} argument).")
