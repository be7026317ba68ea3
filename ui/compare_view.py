"""The Compare page's panels: which runs, their curves, their settings and figures, their digits.

    from ui import compare_view
    picked = compare_view.choose()                 # the runs to compare, the sidebar's first
    models = compare_view.load(picked)             # name -> Model, the unreadable ones named and left out
    compare_view.curves(models); compare_view.tables(models); compare_view.digits(models)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from ui import jobs
from ui.codes import codes
from ui.figures import chart_config, grid, runs_figure, runs_part_figure, sweep_figure
from ui.picker import checkpoints_root, picked_name, runs, unreadable_runs
from ui.views import BY_NAME
from ui.runs import Model, estimates, mnist_test, open_run
from vae_core import analysis, objectives, sweep
from vae_core.config import FIELDS, MNIST_SIDE, format_value
from vae_core.errors import UsageError
from vae_core.likelihoods import LIKELIHOODS
from vae_core.runs import CheckpointError

PICKED = "compare_runs"  # session key: the runs to compare, in the order picked
SWEEP = "compare_sweep"  # session key: the sweep whose runs Compare opened with ("Compare this sweep")
FOLLOWS = "compare_follows"  # session key: the sidebar's run when PICKED last took it in
N_SAMPLES, N_DIGITS = 16, 8
DIFFERS = "background-color: rgba(255, 127, 14, 0.18)"  # a row whose values differ between the runs
PINNED_NAMES = {"_index": st.column_config.Column(pinned=True)}  # the tables' row names stay in view


def choose() -> list[str]:
    """The runs picked to compare: at first the sidebar's run, then the shipped runs or the newest; a run
    picked in the sidebar since joins them, first."""
    available = [info.name for info in runs()]
    sidebar_run = picked_name()
    first = [sidebar_run] if sidebar_run in available else []
    if PICKED not in st.session_state:
        shipped = [name for name in jobs.SHIPPED_RUNS if name in available and name not in first]
        newest = [name for name in available if name not in first]
        st.session_state[PICKED] = first + shipped if len(shipped) >= 2 else (first + newest)[:2]
    elif FOLLOWS in st.session_state and st.session_state[FOLLOWS] != sidebar_run:
        st.session_state[PICKED] = first + [name for name in st.session_state[PICKED] if name not in first]
    st.session_state[FOLLOWS] = sidebar_run
    # A picked run that has gone stays in the list, so the page can say what became of it.
    options = available + [name for name in st.session_state[PICKED] if name not in available]
    picked = st.multiselect("Runs", options, key=PICKED, persist_state="session", placeholder="Pick two runs or more",
                            help="Their curves, settings and figures side by side; samples and reconstructions "
                                 "use the same seed and the same test digits for every run.")
    if len(picked) < 2:
        st.info("Pick two runs or more to compare them." if available[1:] else
                "Comparing needs two runs or more: train another on the Train page.", icon=":material/info:")
        st.stop()
    return picked


def open_sweep(name: str, run_names: list[str]) -> None:
    """Go to Compare with the sweep's runs picked, and its figures against the swept values below the tables."""
    st.session_state[PICKED] = list(run_names)
    st.session_state[SWEEP] = name
    st.session_state[FOLLOWS] = picked_name()  # the sidebar's run is not added: the sweep's runs are the pick
    st.switch_page(BY_NAME["compare"].path)


def sweep_figures(models: dict[str, Model]) -> None:
    """The sweep's final figures against the swept values, small multiples, when the picked runs are of one sweep
    (opened with Compare this sweep): test ELBO, active units, KL and the best log p(x) estimate kept."""
    name = st.session_state.get(SWEEP)
    if not name:
        return
    try:
        study = sweep.read_file(checkpoints_root(), name)
    except UsageError:
        return
    points = {p.run: p for p in study["points"] if p.run in models}
    if len(points) < 2:
        return
    swept = [FIELDS[f].label for f in study["grid"]]
    rows = []
    for run, point in points.items():
        model, kept = models[run], codes(models[run])
        best = next(iter(estimates(model)), None)
        rows.append({"run": run, **{FIELDS[f].label: _shown(f, v) for f, v in point.values.items()},
                     "test ELBO": -model.test_loss if model.test_loss is not None else None,
                     "active units": int(objectives.active_units(kept.loc).sum()),
                     "KL (nats)": float(objectives.kl_per_dimension(kept.loc, kept.scale).sum()),
                     "log p(x) ≥": best.log_px if best is not None else None})
    frame = pd.DataFrame(rows).set_index("run")
    st.subheader(f"Sweep {name}: its figures against the values swept")
    st.plotly_chart(sweep_figure(frame, swept, ["test ELBO", "active units", "KL (nats)", "log p(x) ≥"]),
                    key="compare_sweep_figure", config=chart_config())
    st.caption(f"{len(points)} of the sweep's {len(study['points'])} runs, at their last epoch: the test ELBO and "
               "the mean KL(q(z | x) ‖ p(z)) over the 10,000 test digits, active units as above, and the best "
               "log p(x) estimate kept for the run (Evaluate), where there is one.")


def load(picked: list[str]) -> dict[str, Model]:
    """The picked runs' models; a run that no longer loads is named and left out, and fewer than two stop here."""
    models = {}
    for name in picked:
        try:
            models[name] = open_run(name)
        except CheckpointError as exc:
            why = unreadable_runs().get(name) or str(exc)
            st.error(f"Run {name} no longer loads, so it is left out: {why}", icon=":material/error:")
    if len(models) < 2:
        st.info("Fewer than two of the picked runs load: pick another to compare.", icon=":material/info:")
        st.stop()
    return models


def likelihood_notes(likelihoods: list[str]) -> None:
    """A warning when the runs' likelihoods differ, and what the figures mean under each."""
    if len(likelihoods) > 1:
        st.warning(f"These runs use different likelihoods ({', '.join(likelihoods)}): their ELBOs and log p(x) "
                   f"estimates measure different things, so they are not ranked on one scale here. Compare figures "
                   f"only between runs of the same likelihood.", icon=":material/warning:")
    with st.expander("What the figures mean under each likelihood"):
        for likelihood in likelihoods:
            st.markdown(f"- {LIKELIHOODS[likelihood].describe()}")


def curves(models: dict[str, Model]) -> None:
    """The runs' ELBO curves in one chart, and the ELBO's two parts on a toggle."""
    histories = {name: m.history for name, m in models.items()}
    trained_on = {name: m.vae.config.objective() for name, m in models.items()}
    st.plotly_chart(runs_figure(histories, trained_on), key="compare_elbo", config=chart_config())
    if any(trained_on.values()):
        st.caption("A run with β ≠ 1, KL warm-up or free bits trains on that objective: its train curve is that "
                   "objective, not the ELBO. Test curves are always the ELBO.")
    if not st.toggle("Show the ELBO's two parts", key="compare_parts", persist_state="session",
                     help="E_q[log p(x | z)] and KL(q(z | x) || p(z)) at each test epoch; ELBO = reconstruction − KL."):
        return
    if not any(h.get("split_epochs") for h in histories.values()):
        st.info("None of these runs recorded the parts: runs trained before they were kept have none.")
        return
    left, right = st.columns(2)
    left.plotly_chart(runs_part_figure(histories, "reconstruction", "E_q[log p(x | z)]"), key="compare_rec",
                      config=chart_config())
    right.plotly_chart(runs_part_figure(histories, "kl", "KL(q(z | x) ‖ p(z))"), key="compare_kl",
                       config=chart_config())
    without = [name for name, h in histories.items() if not h.get("split_epochs")]
    if without:
        st.caption(f"No parts for {', '.join(without)}: trained before they were kept.")


def _shown(field: str, value) -> str:
    """A setting as the table shows it."""
    return "all" if field == "limit" and value is None else format_value(field, value)


def _log_px(model: Model) -> str:
    """The best log p(x) estimate kept for the run: most test images, then most samples."""
    best = next(iter(estimates(model)), None)
    if best is None:
        return "not estimated (Evaluate)"
    return f"{best.log_px:.2f} (K = {best.k:,}, {best.images:,} images)"


def tables(models: dict[str, Model]) -> None:
    """The runs' settings (those that differ highlighted) and their final figures, a run per column."""
    configs = {name: m.vae.config for name, m in models.items()}
    st.subheader("Settings and figures")
    settings = {FIELDS[f].label: [_shown(f, getattr(c, f)) for c in configs.values()]
                for f, spec in FIELDS.items() if spec.cli}
    settings["Epochs done"] = [str(m.epoch) for m in models.values()]
    table = pd.DataFrame(settings, index=list(models)).T  # a setting per row, a run per column
    styled = table.style.apply(lambda row: [DIFFERS if row.nunique() > 1 else ""] * len(row), axis=1)
    # Every row shown (no inner scrolling that hides one); on a phone the runs scroll sideways under the
    # pinned setting names.
    st.dataframe(styled, key="compare_settings", height="content", column_config=PINNED_NAMES)
    differ = [label for label, row in table.iterrows() if row.nunique() > 1]
    st.caption(f"Highlighted, the settings that differ: {', '.join(differ)}." if differ else
               "These runs share every setting.")
    figures = pd.DataFrame({  # transposed below, like the settings: a run per column
        "Likelihood": [c.likelihood for c in configs.values()],
        "Test ELBO": [f"{-m.test_loss:.2f}" if m.test_loss is not None else "—" for m in models.values()],
        "log p(x) ≥": [_log_px(m) for m in models.values()],
        "Active units": [f"{int(objectives.active_units(codes(m).loc).sum())} of {c.z_dim}"
                         for m, c in zip(models.values(), configs.values())],
    }, index=list(models)).T
    st.dataframe(figures, key="compare_figures", height="content", column_config=PINNED_NAMES)
    mixed = len({c.likelihood for c in configs.values()}) > 1
    st.caption("Nats per image on the 10,000 test digits. Active units: latent dimensions whose z_loc varies over "
               f"the test set (variance > {objectives.ACTIVE_VARIANCE:g}; Burda et al. counted on 500 training "
               "images, which gives the same count for the shipped runs)."
               + (" These runs' likelihoods differ: do not rank them by these numbers." if mixed else ""))


def digits(models: dict[str, Model]) -> None:
    """Prior samples of each run and its reconstructions of the same test digits, under one seed."""
    st.subheader("Samples and reconstructions")
    seed = int(st.number_input("Seed", 0, 2**31 - 1, step=1, key="compare_seed", persist_state="session",
                               help="The same seed for every run: the same prior draws where the latent sizes "
                                    "match, the same test digits."))
    columns = st.columns(min(len(models), 4))
    for i, (name, m) in enumerate(models.items()):
        columns[i % len(columns)].image(grid(analysis.prior_samples(m.vae, N_SAMPLES, seed), nrow=4, scale=2),
                                        caption=f"{name}: from the prior", width="stretch")
    if len({m.vae.config.z_dim for m in models.values()}) > 1:
        st.caption("The runs' latent sizes differ, so one seed gives each different codes.")
    test_images, _ = mnist_test()
    ids = np.random.default_rng(seed).choice(len(test_images), N_DIGITS, replace=False)
    x = test_images[torch.as_tensor(ids)]
    rows = [x.reshape(N_DIGITS, MNIST_SIDE, MNIST_SIDE)]
    captions = ["test digits " + ", ".join(str(int(i)) for i in ids)]
    for name, m in models.items():
        rows.append(analysis.reconstructions(m.vae, x, k=1, seed=seed, ids=ids.tolist()).draws[:, 0])
        captions.append(f"{name}: one reconstruction each")
    for row, caption in zip(rows, captions):
        st.image(grid(row, nrow=N_DIGITS, scale=2), caption=caption, width="stretch")
