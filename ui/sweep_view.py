"""The Train page's sweep panels: a form for a grid of runs, its progress, Stop all and Compare this sweep.

    from ui import sweep_view
    sweep_view.form(root)               # the grid's fields from the Config's metadata; starts the sweep's driver
    sweep_view.progress_panel(root)     # the sweep picked: each run's state, epoch and test ELBO, live

A sweep started here is `python -m vae_core sweep ...` detached from the fork server as a training run is
(ui.jobs): its driver starts a local Ray (or joins $RAY_ADDRESS), trains the runs as Ray tasks and outlives the
page; its output goes to <checkpoints>/<name>.sweep.log. Its runs are ordinary runs: the sidebar lists each.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from ui import jobs
from ui.views import fragment
from vae_core import forkserver, runs, sweep
from vae_core.config import FIELDS, Config, ConfigError, flag, format_value
from vae_core.errors import UsageError

NAME_KEY = "sweep_name"  # session keys: the sweep's name, the fields it varies, the picked sweep
FIELDS_KEY = "sweep_fields"
PICKED = "sweep_picked"
STARTING = "sweep_starting"  # the sweep this session started, until its driver has written its file; its pid
DRIVER = "sweep_driver"
CONFIRM = "sweep_confirm"
ERRORS = "sweep_errors"  # widget key -> what is wrong with it, from the last Start
SWEPT = [name for name, spec in FIELDS.items() if spec.cli and name not in sweep.NOT_SWEPT]
SHARED = ("epochs", "limit")  # what every run of a form's sweep shares; the rest keep the tutorial's defaults


def values_key(field: str) -> str:
    """The session key of a swept field's values widget."""
    return f"sweep_values_{field}"


def _values_widget(where, field: str) -> None:
    spec = FIELDS[field]
    default = getattr(Config(), field)
    if spec.choices:
        where.multiselect(f"{spec.label}: values", tuple(spec.choices), key=values_key(field), help=spec.help)
    else:
        example = "400/200,200" if spec.kind is tuple else f"{format_value(field, default)}, …"
        where.text_input(f"{spec.label}: values", key=values_key(field), placeholder=example,
                         help=f"{spec.help} Several values, comma-separated"
                              + (" (hidden layers: '/' between them)." if spec.kind is tuple else "."))


def form(root: Path) -> None:
    """The sweep's form: its name, the settings it varies and their values, the epochs and subset all share."""
    errors = st.session_state.get(ERRORS, {})
    with st.expander("Start a sweep: a grid of runs, trained in parallel on Ray", icon=":material/grid_view:"):
        st.caption("One run per combination of the values below, named after them (study-beta2-z10), trained "
                   "in parallel on this server's free cores, or on the Ray cluster $RAY_ADDRESS names.")
        left, right = st.columns(2)
        left.text_input("Sweep name", key=NAME_KEY, value="study", help="The prefix of its runs' names.")
        right.multiselect("Settings to vary", SWEPT, key=FIELDS_KEY, format_func=lambda f: FIELDS[f].label,
                          default=["beta"])
        _error(st, errors.get(NAME_KEY) or errors.get(FIELDS_KEY))
        for field in st.session_state.get(FIELDS_KEY) or []:
            _values_widget(st, field)
            _error(st, errors.get(values_key(field)))
        shared = st.columns(len(SHARED))
        for column, field in zip(shared, SHARED):
            spec = FIELDS[field]
            column.number_input(f"{spec.label} of each run", key=f"sweep_{field}", value=10 if field == "epochs" else 0,
                                step=1, help=spec.help)
            _error(column, errors.get(f"sweep_{field}"))
        st.button("Train the sweep", type="primary", icon=":material/play_arrow:", on_click=start, args=(root,))
        _error(st, errors.get("start"))
        if st.session_state.get(CONFIRM):
            st.warning(f"This grid makes {st.session_state[CONFIRM]} runs: press Train the sweep again to "
                       f"train them all.", icon=":material/warning:")


def _error(where, message: str | None) -> None:
    if message:
        where.error(message, icon=":material/error:")


def read_form(values) -> tuple[str, dict, dict, dict[str, str]]:
    """(name, grid, shared settings, errors by widget key), the errors in the Train form's words."""
    errors: dict[str, str] = {}
    name = str(values.get(NAME_KEY) or "").strip()
    grid: dict = {}
    for field in values.get(FIELDS_KEY) or []:
        raw = values.get(values_key(field))
        chosen = list(raw) if FIELDS[field].choices else str(raw or "").strip()
        if not chosen:
            errors[values_key(field)] = f"{FIELDS[field].label} needs at least one value."
            continue
        text = ",".join(chosen) if FIELDS[field].choices else chosen
        try:
            grid.update(sweep.parse_grid([f"{field}={text}"]))
        except ConfigError as exc:
            errors[values_key(field)] = f"{FIELDS[field].label} {exc.problem}."
        except UsageError as exc:
            errors[values_key(field)] = str(exc).replace(f"--grid {field}", FIELDS[field].label)
    if not values.get(FIELDS_KEY):
        errors[FIELDS_KEY] = "Pick at least one setting to vary."
    shared = {}
    for field in SHARED:
        number = values.get(f"sweep_{field}")
        value = None if field == "limit" and not number else int(number)
        try:
            Config(**{field: value})
            shared[field] = value
        except ConfigError as exc:
            errors[f"sweep_{field}"] = f"{FIELDS[field].label} of each run {exc.problem}."
    return name, grid, shared, errors


def start(root: Path) -> None:
    """Start's handler: check the sweep as the CLI does, then detach its driver; errors go under their fields.
    A grid of more than sweep.CONFIRM_ABOVE runs starts on a second press."""
    s = st.session_state
    name, grid, shared, errors = read_form(s)
    points: list[sweep.Point] = []
    if not errors:
        try:
            points = sweep.expand(name, grid)
            busy = [info.name for info in runs.scan_runs(root).runs if jobs.job(root, info.name).active]
            if busy:
                raise UsageError(f"Run {busy[0]} is training: a sweep starts once it ends (stop it first).")
            sweep.check_new(root, name, points, shared, confirmed=s.get(CONFIRM) == len(points))
        except runs.RunNameError as exc:
            errors[NAME_KEY] = str(exc)
        except UsageError as exc:
            if len(points) > sweep.CONFIRM_ABOVE and s.get(CONFIRM) != len(points) and "pass --yes" in str(exc):
                s[CONFIRM], s[ERRORS] = len(points), {}  # said under the button; a second press confirms
                return
            errors["start"] = str(exc)
    s[ERRORS] = errors
    if errors:
        return
    args = ["sweep", name, "--checkpoints", str(root), *[a for f, vs in grid.items() for a in
                                                          ("--grid", f"{f}=" + _joined(f, vs))]]
    for field, value in shared.items():
        args += [flag(field), format_value(field, value)]
    s[DRIVER] = forkserver.detach(args, log=_log(root, name), cwd=jobs.PROJECT, env=os.environ)
    s[STARTING], s[CONFIRM] = name, None


def _log(root: Path, name: str) -> Path:
    return Path(root) / f"{name}.sweep.log"


def _joined(field: str, values: list) -> str:
    return ("/" if FIELDS[field].kind is tuple else ",").join(format_value(field, v) for v in values)


def progress_panel(root: Path) -> None:
    """The picked sweep's runs (state, epoch, test ELBO), Stop all and Compare this sweep, redrawn every second;
    a sweep this session started shows at once, while Ray starts."""
    s = st.session_state
    names = sweep.list_sweeps(root)
    starting = s.get(STARTING)
    if starting and starting not in names:
        fragment(_starting, run_every=1.0)(root, starting, s.get(DRIVER))
    elif starting:  # its driver has written its file: show it
        s[PICKED], s[STARTING] = starting, None
    if not names:
        return
    if s.get(PICKED) not in names:
        s[PICKED] = names[0]
    st.subheader("Sweeps")
    st.selectbox("Sweep", names, key=PICKED)
    fragment(_live, run_every=1.0)(root, s[PICKED])


def _starting(root: Path, name: str, pid: int | None) -> None:
    """The sweep just started, while its driver starts Ray; the whole page again once its file is written."""
    if sweep.file_path(root, name).exists():
        st.rerun(scope="app")
    if not jobs.alive(pid):
        st.session_state[STARTING] = None
        log = _log(root, name)
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-6:]) if log.exists() else ""
        st.error(f"Sweep {name} did not start:\n\n{tail or 'its process ended without a word'}", icon=":material/error:")
        return
    st.info(f"Sweep {name} is starting: Ray starts in a few seconds, then its runs train here.",
            icon=":material/hourglass_top:")


def _live(root: Path, name: str) -> None:
    try:
        study = sweep.read_file(root, name)
    except UsageError as exc:
        st.warning(str(exc), icon=":material/warning:")
        return
    rows = sweep.progress(root, study)
    swept = list(study["grid"])
    frame = pd.DataFrame([{"run": r.run, **{FIELDS[f].label: format_value(f, p.values[f]) for f in swept},
                           "state": r.state, "epoch": f"{r.epoch} of {r.epochs}",
                           "test ELBO": None if r.test_elbo is None else round(r.test_elbo, 2)}
                          for r, p in zip(rows, study["points"])]).set_index("run")
    st.dataframe(frame, key=f"sweep_table_{name}", height="content")
    active = [r.run for r in rows if r.state in ("starting", "running", "stopping")]
    left, right = st.columns(2)
    if left.button("Stop all", icon=":material/stop_circle:", disabled=not active and bool(study.get("stopped")),
                   key=f"sweep_stop_{name}", help="Each run stops after its current step and keeps its epochs; "
                                                  "runs not started yet never start."):
        sweep.stop_all(root, study)
        st.toast(f"Asked {len(active)} run(s) of {name} to stop.")
    done = [r.run for r in rows if r.epoch > 0]
    if right.button("Compare this sweep", icon=":material/stacked_line_chart:", disabled=len(done) < 2,
                    key=f"sweep_compare_{name}", help="Compare opens with the sweep's runs that have an epoch, and "
                                                      "its final figures against the swept values."):
        from ui import compare_view

        compare_view.open_sweep(name, done)
