"""Stage ``report``: ``<results>/<name>.md`` and ``.json`` from the work directory's rows, with the CMA-ES learning
curves and a real-vs-dream GIF. What the runs showed and the commands of a reported run are the hand-written
``<results>/<name>_notes.md``, included at the end of the page when present."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from gym_dream.checkpoint import atomic_write_bytes, read_card
from gym_dream.envs.core import tau_name
from trainers.evaluation.evaluate import exploits_dream
from trainers.experiment.recipe import Recipe
from trainers.experiment.workdir import Controller, WorkDir, read_json, round_driver


def learning_curves(recipe: Recipe, work: WorkDir, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    each = ", each seed" if len(recipe.cmaes_seeds) > 1 else ""
    for i, tau in enumerate(recipe.taus):
        for seed in recipe.cmaes_seeds:
            log = work.cmaes_log(tau, seed)
            if log.is_file():
                rows = [json.loads(line) for line in log.read_text().splitlines()]
                ax.plot([r["generation"] for r in rows], [r["mean_fitness"] for r in rows], color=f"C{i}",
                        label=f"tau {tau_name(tau)} (population mean{each})" if seed == recipe.cmaes_seeds[0] else None)
    ax.set_xlabel("CMA-ES generation")
    ax.set_ylabel("dream return")
    ax.set_title(f"{recipe.dream_id}: CMA-ES in the dream")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def real_vs_dream_gif(recipe: Recipe, work: WorkDir, out: Path) -> None:
    """Real frames next to the model's open-loop dream under the main controller's actions (half size, every other frame)."""
    import imageio.v2 as imageio

    from trainers.evaluation.video import DreamVideoConfig, write_dream_video

    main = work.row_controller(recipe.main_tau)
    agent = work.controller(main) if main and work.controller(main).is_dir() else None
    write_dream_video(DreamVideoConfig(model=str(work.model), env_id=recipe.dream_id, out=str(out), steps=150, compare=True, seed=3,
                                       agent=str(agent) if agent else None, fps=20))
    frames = imageio.mimread(out)
    imageio.mimsave(out, [f[::2, ::2, :3] for f in frames[::2]], duration=100, loop=0)


def _by_tau(row: dict[str, Any]) -> tuple[float, float]:
    """A controller row's place in the table: by its tau, a range (low, high) after the single temperature ``low``."""
    tau = Controller.from_dict(row["controller"]).tau
    return tau if isinstance(tau, tuple) else (tau, tau)


def _agent_line(r: dict[str, Any], suffix: str = "") -> str:
    tau, d = next(iter(r["dream"].items()))
    mean = " (CMA-ES mean)" if (r.get("controller") or {}).get("kind") == "mean" else ""
    return (f"| {r['agent']}{mean}{suffix} | {d['mean']:.0f} ± {d['std']:.0f} | **{r['real']['mean']:.0f} ± {r['real']['std']:.0f}** | "
            f"{r['real']['episodes']} | {'**yes**' if exploits_dream(d, r['real']) else 'no'} |")


def _real_cmaes_partial(work: WorkDir, budget: int) -> dict[str, Any] | None:
    """A real-env CMA-ES run stopped before its budget: its progress (here, or carried over by ``adopt``)."""
    log = work.real_cmaes / "log.jsonl"
    if log.is_file():
        rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        return {"generations": len(rows), "real_steps": rows[-1]["real_steps"], "budget": budget,
                "last_population_mean": rows[-1]["mean_fitness"], "best_single_episode": max(x["max_fitness"] for x in rows)}
    adopted = work.adopted()
    if adopted.get("real_env_cmaes_partial"):
        return {**adopted["real_env_cmaes_partial"], "carried_over_from": adopted["commit"]}
    return None


def _partial_line(q: dict[str, Any]) -> str:
    return (f"| CMA-ES linear trained on the REAL env, **stopped** after {q['generations']} generations of 16 "
            f"({q['real_steps']} of the {q['budget']} real steps budgeted; not evaluated){' (**)' if q.get('carried_over_from') else ''} | - | "
            f"last population mean {q['last_population_mean']:.0f} (one episode per candidate), best single episode "
            f"{q['best_single_episode']:.0f} | - | - |")


def selection_note(recipe: Recipe, work: WorkDir, selected: dict[str, Any]) -> str:
    """The (***) footnote: how the validation-chosen row was chosen, with every candidate's scores."""
    from trainers.experiment.stages.select import candidate_name

    sel = selected["selection"]
    state = read_json(work.select_state)
    table = ["| candidate | dream (100 ep) | real, validation episodes |", "|---|---|---|"]
    table += [f"| {candidate_name(c)} | {c['dream']:.0f} | {c['real']['mean']:.0f} ± {c['real']['std']:.0f} |" for c in state["candidates"]]
    test = selected.get("real_seeds", [0, 0])
    if sel.get("kind") == "taus":
        how = (f"each tau's row above (the dream's pick of that tau's runs) is a candidate, scored on the sweep's first {sel['episodes']} real "
               f"episodes (seeds {sel['seeds'][0]}-{sel['seeds'][1]}, episodes the rows had already driven); the best mean was then scored on "
               f"{test[1] - test[0] + 1} fresh test episodes (seeds {test[0]}-{test[1]}) that no row had driven.")
    else:
        how = (f"each CMA-ES run's dream pick{', run deterministically and with the rounds OU noise,' if recipe.noise_row else ''} drove the "
               f"same {sel['episodes']} real episodes (seeds {sel['seeds'][0]}-{sel['seeds'][1]}, none of them a test episode); the best "
               "mean was then scored on the test episodes above.")
    return (f"(***) Chosen on real validation episodes (`gym-dream experiment {recipe.name} select`): {how} "
            f"Still trained only in the dream, but chosen with {sel['real_steps']} real steps, so it is not a "
            "dream-only result like the rows chosen in the dream; its validation score is a maximum over "
            f"{sel['candidates']} noisy means, so expect the test score lower.\n\n" + "\n".join(table) + "\n")


def _rounds_section(recipe: Recipe, work: WorkDir, card: dict[str, Any], rounds: list[dict[str, Any]]) -> list[str]:
    adopted = work.adopted()
    lines = ["## Collection rounds (World Models' iterative procedure)", "",
             f"The first {rounds[0]['steps_before']} real steps came from the recipe's policy ({(adopted or card['data'])['policies'][0]}); "
             f"then each round's model and controllers (kept in `{work.root}/round-K/`) handed over to a controller-driven round "
             f"(`gym-dream experiment {recipe.name} iterate`; OU exploration noise sigma {recipe.iterate.get('sigma')}, theta "
             f"{recipe.iterate.get('theta')}; each refit starts from the last model with {recipe.iterate.get('refit')}):", ""]
    if adopted:
        k = len(adopted["collection_rounds"])
        lines += [f"Rounds 1-{k} are those of the model shipped at commit {str(adopted['commit'])[:7]}; their work folder "
                  f"(data, models) was not kept. Round {k + 1} started from what that run shipped, `{adopted['from']}` and "
                  f"`{adopted['controller']}` (`gym-dream experiment {recipe.name} adopt`), and its data start a fresh dataset: the "
                  f"current model was fitted on {card['data']['steps']} new real steps, starting from the weights of the adopted model "
                  f"({adopted['real_steps']} earlier real steps). Real steps below count within each run's dataset.", ""]
    for k, r in enumerate(rounds, 1):
        check = r.get("real_check")
        lines.append(f"- round {k}: the {round_driver(r)} scored {_dream(r):.0f} in its dream"
                     + (f" and {check['mean']:.0f} ± {check['std']:.0f} over {check['episodes']} real episodes" if check else "")
                     + f"; it then drove real steps {r['steps_before']} to {r['target_steps']} of the data.")
    return [*lines, ""]


def _dream(r: dict[str, Any]) -> float:
    if "dream_return" in r:
        return float(r["dream_return"])
    c, scores = r["controller"], r["selection_dream_returns"]
    if isinstance(scores, dict):
        return scores[c]
    return next(s["dream"] for s in scores if Controller.from_dict(s) == Controller.from_dict(c))


def _model_section(recipe: Recipe, work: WorkDir, card: dict[str, Any], real_steps: int, fits: list[float]) -> list[str]:
    adopted, t, h = work.adopted(), card["training"], card["training"]["heldout"]
    hp = t["hyperparameters"]
    generations = ", ".join(
        f"tau {tau_name(tau)}: " + " / ".join(str(len(work.cmaes_log(tau, s).read_text().splitlines())) for s in recipe.cmaes_seeds if work.cmaes_log(tau, s).is_file())
        for tau in recipe.taus if any(work.cmaes_log(tau, s).is_file() for s in recipe.cmaes_seeds))
    main = work.row_controller(recipe.main_tau)
    path = work.controller(main) / "controller.json" if main else None
    cmaes_device = json.loads(path.read_text()).get("config", {}).get("device", "cpu") if path and path.is_file() else "cpu"
    family = card.get("family", "mdnrnn")
    fit_time = (f"- fit: {t['seconds'] / 60:.0f} min" + (f" (the last of {len(fits)} fits, {sum(fits) / 60:.0f} min in all)" if len(fits) > 1 else "")
                + f" on {t['device'] if t.get('device', 'cpu') != 'cpu' else str(t['cpu_threads']) + ' CPU threads'}; ")
    if family == "mdnrnn":
        m = h["mdnrnn"]
        model_lines = [
            fit_time + f"VAE channels {hp['vae_channels']}, z {hp['z_dim']}, LSTM {hp['hidden']}, {hp['mixtures']} mixtures; weights fp16",
            f"- held-out VAE: reconstruction {h['vae'].get('reconstruction', float('nan')):.1f} (squared error per 64x64x3 frame in [0,1]), "
            f"KL {h['vae'].get('kl', float('nan')):.1f}",
            f"- held-out MDN-RNN: NLL per latent dim {m['nll']:.3f}, reward MSE {m['reward_mse']:.4f}, termination accuracy "
            f"{m['termination_accuracy']:.4f}, recall on real ends {m.get('termination_recall', float('nan')):.3f}, false alarms "
            f"{m.get('termination_false_alarm_rate', float('nan')):.4f} ({m['transitions']} transitions)"]
    else:  # another family: its sizes and whatever held-out metrics its fitter recorded
        sizes = ", ".join(f"{k} {v}" for k, v in hp.items() if k in ("deter", "stoch", "classes", "hidden", "units", "layers", "updates"))
        metrics = ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in (h.get(family) or {}).items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool))
        model_lines = [fit_time + f"{family}: {sizes}", f"- held-out {family}: {metrics}"]
    return [
        "## Model and compute", "",
        f"- data: {card['data']['steps']} real steps, {card['data']['episodes']} episodes, policy {card['data']['policies']} "
        + (f"(after {adopted['real_steps']} real steps behind the adopted model; {real_steps} in all)" if adopted else
           f"(`gym-dream experiment {recipe.name} collect`)"),
        *model_lines,
        f"- CMA-ES: population {recipe.cmaes['popsize']} x {recipe.cmaes['rollouts']} dream rollouts; generations per tau: {generations}"
        + (f" (seeds {', '.join(map(str, recipe.cmaes_seeds))})" if len(recipe.cmaes_seeds) > 1 else "") + "; wall time per tau in the json",
        f"- devices: fit on {t.get('device', 'cpu')}, CMA-ES dreams on {cmaes_device}; "
        f"this report written on {platform.machine()} with {os.cpu_count()} CPU cores", "",
    ]


def write_report(recipe: Recipe, work: WorkDir, results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    card = read_card(work.model)
    rows = [r for r in (work.read_row(work.row(t)) for t in recipe.taus) if r]
    if recipe.noise_row and work.read_row(work.row(recipe.main_tau, noise=True)):
        rows.append(work.read_row(work.row(recipe.main_tau, noise=True)))
    sb3_rows = [r for r in (work.read_row(work.sb3_row(a, recipe.main_tau)) for a in recipe.sb3) if r]
    rnd, real_cma, selected = work.read_row(work.random_row), work.read_row(work.real_cmaes_row), work.read_row(work.selected_row)
    real_steps = work.real_steps(card)
    partial = None if real_cma else _real_cmaes_partial(work, real_steps)
    curves, gif = results / f"{recipe.name}_cmaes.png", results / f"{recipe.name}_real_vs_dream.gif"
    learning_curves(recipe, work, curves)
    real_vs_dream_gif(recipe, work, gif)
    notes = results / f"{recipe.name}_notes.md"
    lines = [
        f"# {recipe.real_id} from dreams alone", "",
        (f"Reproduce: `{recipe.reproduce}` (every stage on one machine, CPU by default; the recipe is derived from the env's "
         f"spaces: trainers/experiment/derive.py)." if recipe.reproduce else
         f"Reproduce: `gym-dream experiment {recipe.name} all` (every stage with the recipe's budgets on one machine, CPU by default; "
         f"the recipe is `{recipe.name}.toml`).") + (f" The commands of the reported run, and what the runs showed, are in the notes at the "
                                                   f"end ([{notes.name}]({notes.name}))." if notes.is_file() else ""), "",
        f"Every agent below was trained only in `{recipe.dream_id}` and never touched the real env while training; real scores "
        "come through `DreamObservation` (real seeds 0..N-1), dream scores from 100 dream episodes at the training tau.", "",
        "| agent | dream return (tau, 100 ep) | real return | real episodes | exploits dream? |", "|---|---|---|---|---|",
        *[_agent_line(r) for r in sorted(rows, key=_by_tau)],
        *([_agent_line(selected, " (***)")] if selected else []),
        *[_agent_line(r) for r in sb3_rows],
    ]
    if real_cma:
        lines.append(f"| {real_cma['agent']} | - | {real_cma['real']['mean']:.0f} ± {real_cma['real']['std']:.0f} | {real_cma['real']['episodes']} | - |")
    elif partial:
        lines.append(_partial_line(partial))
    if rnd:
        lines.append(f"| random policy{' (*)' if rnd.get('note') else ''} | - | {rnd['real']['mean']:.0f} ± {rnd['real']['std']:.0f} | {rnd['real']['episodes']} | - |")
    lines += ["", *([f"(*) {rnd['note']}.", ""] if rnd and rnd.get("note") else [])]
    if partial and partial.get("carried_over_from"):
        lines += [f"(**) From the run of the model shipped at commit {str(partial['carried_over_from'])[:7]}, with the {partial['budget']} "
                  "real steps behind that run's model as its budget; its work folder was not kept.", ""]
    if selected:
        lines.append(selection_note(recipe, work, selected))
    rounds, fits = work.all_rounds(), work.fits_seconds(card)
    if rounds:
        lines += _rounds_section(recipe, work, card, rounds)
    lines += _model_section(recipe, work, card, real_steps, fits)
    lines += [f"![CMA-ES learning curves]({curves.name})", "",
              f"Real frames (left, as the model sees them) next to the model's open-loop dream under the same actions (right): "
              f"![real vs dream]({gif.name})", ""]
    if notes.is_file():
        lines += [f"## Notes and commands (from [{notes.name}]({notes.name}))", "", notes.read_text().strip(), ""]
    for r in rows:
        c = Controller.from_dict(r["controller"])
        log = work.cmaes_log(c.tau, c.seed)
        if log.is_file():
            r["train_seconds"] = json.loads(log.read_text().splitlines()[-1])["seconds"]
    atomic_write_bytes(results / f"{recipe.name}.md", ("\n".join(lines) + "\n").encode())
    summary = {"agents": rows, "selected": selected, "sb3_agents": sb3_rows, "random": rnd, "real_env_cmaes": real_cma,
               "real_env_cmaes_partial": partial, "collection_rounds": rounds, "adopted": work.adopted() or None,
               "real_steps": real_steps, "fits_seconds": fits, "model_card": {k: card[k] for k in ("data", "training")}}
    atomic_write_bytes(results / f"{recipe.name}.json", (json.dumps(summary, indent=2) + "\n").encode())
    print("\n".join(lines))
