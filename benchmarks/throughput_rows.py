"""What each row of benchmarks/throughput.py runs: a row spec (``kind:args``, e.g. ``vec:carracing:1024``) becomes
``(run, batch, info)``, where ``run()`` does one call of ``batch`` steps and ``info()`` adds the row's fields; and the
models the rows step (a CarRacing-shaped pixel model, the shipped ones, an RSSM of PlaNet's sizes and its planner).
The timing and the pairs stay in throughput.py; the summary and the plot are throughput_summary.py's."""

from __future__ import annotations


MEMBER_FORMS = {"1 member": dict(members=1), "5 ensemble members": dict(members=5), "5 dropout members (p=0.1)": dict(members=5, dropout=0.1)}


def _pixel_model(members: int = 1, dropout: float = 0.0):
    import gymnasium as gym
    import numpy as np
    import torch

    from gym_dream.models import MDNRNN
    from gym_dream.preprocessing import Preprocessing

    torch.manual_seed(0)
    obs = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
    act = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))
    m = MDNRNN(obs, act, Preprocessing("image", size=(64, 64)), bank_size=64, members=members, dropout=dropout)
    m.card = {"env": {"id": "CarRacing-v3"}}
    if members > 1:
        m.card["uncertainty"] = {"reward_min": -100.0, "heldout_disagreement": {"quantiles": {"99": 1e9}}}
    return m.eval().requires_grad_(False)


def _model(name):
    import gym_dream

    if name == "cartpole":
        return "cartpole"
    if name == "shipped":
        return gym_dream.resolve_model("carracing")
    return _pixel_model()


def _dream_id(name):
    return "Dream-CartPole-v0" if name == "cartpole" else "Dream-CarRacing-v0"


def _rssm():
    import gymnasium as gym
    import numpy as np
    import torch

    from gym_dream.models import RSSM
    from gym_dream.preprocessing import Preprocessing

    torch.manual_seed(0)
    obs = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)  # dm_control cartpole-swingup's state
    act = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    m = RSSM(obs, act, Preprocessing("vector"), deter=200, stoch=30, hidden=200)
    m.card = {"env": {"id": "dm_control/cartpole-swingup-v0"}}
    return m.eval().requires_grad_(False)


def _planner(rest: list[str]):
    """A CEM planner of a preset (``rest`` = [preset] or [preset, precision]) on the RSSM, a start state and the matrix-product
    FLOPs of one decision."""
    import torch

    from trainers.planning.cem import CEM_PRESETS, CEMPlanner

    model = _rssm()
    cfg = CEM_PRESETS[rest[0]]
    if len(rest) > 1:
        cfg = type(cfg)(**{**cfg.__dict__, "precision": rest[1]})
    planner = CEMPlanner(model, cfg, seed=0)
    with torch.inference_mode():
        state = model.initial_state(1, torch.Generator().manual_seed(0))
        s = {k: v.expand(cfg.candidates, *v.shape[1:]).contiguous() for k, v in state.items()}
        extra = {"precision": cfg.precision} if cfg.precision != "float32" else {}
        step_flops = _matmul_flops(lambda: model.imagine(s, torch.zeros(cfg.candidates, 1), 1.0, planner.generator, **extra))
    return planner, state, step_flops * cfg.horizon * cfg.iterations


def _matmul_flops(fn) -> int:
    """FLOPs of the matrix products in one call of ``fn`` (torch's flop counter: mm/addmm/bmm/conv)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def runner(spec: str):
    """``(run, batch, info)`` for a throughput spec: ``run()`` does one call of ``batch`` steps, ``info()`` adds fields."""
    import gymnasium as gym
    import torch

    import gym_dream  # noqa: F401

    kind, *rest = spec.split(":")
    none = lambda: {}
    if kind == "real":
        env = gym.make(rest[0])
        env.reset(seed=0)
        env.action_space.seed(0)

        def run():
            if any(env.step(env.action_space.sample())[2:4]):
                env.reset()
        return run, 1, none
    if kind == "single":
        env = gym.make(_dream_id(rest[0]), model=_model(rest[0]), max_episode_steps=1000)
        env.reset(seed=0)
        env.action_space.seed(0)

        def run():
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        return run, 1, none
    if kind == "loop":
        model, n_envs = _model(rest[0]), int(rest[1])
        envs = [gym.make(_dream_id(rest[0]), model=model, max_episode_steps=1000) for _ in range(n_envs)]
        for i, e in enumerate(envs):
            e.reset(seed=i)
            e.action_space.seed(i)

        def run():
            for e in envs:
                _, _, term, trunc, _ = e.step(e.action_space.sample())
                if term or trunc:
                    e.reset()
        return run, n_envs, none
    if kind in ("vector", "gpu", "bare", "members"):
        device, precision, kw = "cpu", "float32", {}
        if kind == "gpu":
            name, n_envs, device = "shipped", int(rest[0]), "cuda"
            model = _model(name)
        elif kind == "members":
            name, n_envs = "pixel", 1024
            model = _pixel_model(**MEMBER_FORMS[rest[0]])
            if model.members > 1:  # the env's uncertainty work is counted too
                kw = dict(uncertainty_penalty=0.1, uncertainty_limit="q99")
        else:
            name, n_envs = rest[0], int(rest[1])
            precision = rest[2] if len(rest) > 2 else "float32"
            model = _model(name)
            if precision != "float32":
                kw = {"precision": precision}
        venv = gym.make_vec(_dream_id(name), num_envs=n_envs, vectorization_mode="vector_entry_point", model=model, tau=1.15,
                            device=device, max_episode_steps=1000, **kw)
        venv.reset(seed=0)
        venv.action_space.seed(0)
        actions = [venv.action_space.sample() for _ in range(16)]
        i = [0]
        if kind != "bare":
            def run():
                venv.step(actions[i[0] % 16])
                i[0] += 1
                if device == "cuda":
                    torch.cuda.synchronize()
            return run, n_envs, lambda: {"device": device, "precision": venv.precision}  # "auto" as resolved here
        # the same model and batch with no env around it: tensors in, tensors out, a fixed set of action batches
        model, gen = venv.model, venv._generator
        a = [torch.as_tensor(x) for x in actions]
        state = [venv.state]
        extra = {"precision": precision} if precision != "float32" else {}

        def run():
            with torch.inference_mode():
                state[0] = model.imagine(state[0], a[i[0] % 16], 1.15, gen, **extra).state
            i[0] += 1

        def info():
            with torch.inference_mode():
                flops = _matmul_flops(lambda: model.imagine(state[0], a[0], 1.15, gen, **extra))
            return {"matmul_flops_per_env_step": flops / n_envs}
        return run, n_envs, info
    if kind == "gemm":
        dtype = getattr(torch, rest[0])
        x, y = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        return (lambda: torch.mm(x, y)), 1, lambda: {"matmul_flops_per_env_step": 2 * 2048**3}
    if kind == "planner":
        planner, state, flops = _planner(rest)
        return (lambda: planner.plan(state)), 1, lambda: {"matmul_flops_per_env_step": flops}
    if kind == "train":
        from gym_dream.models import MDNRNN
        from gym_dream.preprocessing import Preprocessing

        cp = gym.make("CartPole-v1")
        kw = MEMBER_FORMS[rest[0]]
        m = MDNRNN(cp.observation_space, cp.action_space, Preprocessing("vector"), hidden=256, mixtures=5, head_hidden=64, residual=True, **kw)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        lead = (kw["members"],) if kw["members"] > 1 else ()  # every member its own windows, as gym-dream fit does
        g = torch.Generator().manual_seed(0)
        z = torch.randn(*lead, 16, 33, 4, generator=g)
        a = torch.randint(0, 2, (*lead, 16, 32), generator=g)
        r, d, mk = torch.ones(*lead, 16, 32), torch.zeros(*lead, 16, 32, dtype=torch.bool), torch.ones(*lead, 16, 32)

        def run():
            loss = m.sequence_loss(z, a, r, d, mk)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        return run, 1, none
    raise ValueError(f"unknown spec {spec!r}")
