"""The Train page's panels: the form's Start, the run's progress, actions, chart and digits.

    from ui import train_view
    train_view.find_training(root)                       # a new session watches the run that trains
    st.form_submit_button("Start", on_click=train_view.start_run, args=(root,))
    fragment(train_view.live, run_every=train_view.every(True))(root, "demo", active=True, listed=True)

Whether a run may start is vae_core.start's rule, asked through ui.jobs; the
form's own values are checked by ui.train_form.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from ui import jobs
from ui.figures import chart_config, elbo_figure, grid, history_frame, parts_figure, png_bytes
from ui.picker import RUN_KEY, pick, runs
from ui.train_form import NUMBER_FORMAT, form_config, key
from ui.views import link
from vae_core import checkpoint as ckpt
from vae_core import start as start_rule
from vae_core.config import Config, ConfigError
from vae_core.likelihoods import LIKELIHOODS
from vae_core.runs import MAP_MISSING, PREVIEW_FILE, CheckpointError, checkpoint_path, read_preview, run_dir
from vae_core.train import SPLIT_TRAIN_IMAGES, DeviceError, resolve_device

LIVE_SECONDS = 1.0  # the live view's redraws while its run trains
IDLE_SECONDS = 5.0  # and otherwise

FOUND = "train_found_training"  # session key: this session's first Train page looked for a run that trains
ERRORS = "train_errors"  # session key: widget key (or START) -> what is wrong with its value
START = "start"  # ERRORS' key for why the Start press as a whole was refused, shown under the button
RUN_ERROR = "train_run_error"  # session key: why the last Stop, Resume or Continue did not work
CONFIRM = "train_confirm_overwrite"  # session key: the run whose replacement one Start press asked for


def find_training(root: Path) -> None:
    """A new session (say, after a server restart) watches the run that trains; only on its first visit: a
    session already watching a run is not moved to one another tab started since."""
    if RUN_KEY in st.session_state or FOUND in st.session_state:
        return
    st.session_state[FOUND] = True
    for run in jobs.training(root)[:1]:
        pick(run)
        st.rerun()  # the sidebar's picker, drawn before this page, names it too


def fresh_name(root: Path) -> str:
    """demo, demo-2, demo-3...: the first name no run has yet."""
    taken = {p.name for p in root.glob("*/")}
    return next(n for n in ("demo", *(f"demo-{i}" for i in range(2, 10_000))) if n not in taken)


def start_run(root: Path) -> None:
    """The form's Start: check every value, then launch the run and switch every view to it."""
    s = st.session_state
    name = s.train_run.strip()
    errors = {}
    try:
        start_rule.run_folder(root, name, jobs.policy())
    except jobs.StartRefused as exc:  # "Run name '../x' is not allowed: ...", under the name's field
        errors["train_run"] = str(exc)
    config, wrong = form_config(s)
    errors.update(wrong)
    try:
        resolve_device(s.train_device)
    except DeviceError as exc:
        errors[key("device")] = str(exc)
    if not errors:
        # Refusals of the start as a whole (another tab's run holds the server, the name is taken) go
        # under the button: that is where the user looks after pressing it, on a phone too.
        try:
            jobs.start(root, name, config, overwrite=s.train_overwrite, confirmed=s.get(CONFIRM) == name)
        except jobs.StartRefused as exc:
            errors[START] = str(exc)
            if exc.reason == "confirm":
                s[CONFIRM] = name  # the second press is the deliberate one
        except OSError as exc:  # a full disk or a read-only folder: nothing was started
            errors[START] = f"Run {name} could not start: {exc.strerror or exc}."
    s[ERRORS] = errors
    if errors:
        return
    pick(name)
    s.pop(CONFIRM, None)
    s.train_run, s.train_overwrite = fresh_name(root), False


def continue_run(root: Path, run: str, epochs: int | str, lr_key: str | None = None) -> None:
    """Resume `run` up to `epochs` (its own target, or the value of the widget keyed so), at the learning
    rate in widget `lr_key` if given; from scratch, with the settings it was given, if nothing was saved."""
    st.session_state.pop(RUN_ERROR, None)
    # A widget's value is read when the button is pressed: the args bound at the last redraw miss a
    # number typed just before the click (both reach the server in one rerun).
    epochs = int(st.session_state[epochs]) if isinstance(epochs, str) else epochs
    lr = st.session_state.get(lr_key) if lr_key else None
    path = checkpoint_path(root, run)
    try:
        if path.exists():
            config = ckpt.load_state(path).config
            jobs.start(root, run, dataclasses.replace(config, epochs=epochs, lr=lr or config.lr), resume=True)
        else:  # ended before its first epoch did
            config = Config.from_dict(jobs.job(root, run).status["config"])
            jobs.start(root, run, dataclasses.replace(config, lr=lr or config.lr))
    except OSError as exc:  # a full disk or a read-only folder: nothing was started
        st.session_state[RUN_ERROR] = f"Run {run} cannot be resumed: {exc.strerror or exc}."
    except (CheckpointError, ConfigError, KeyError, TypeError, jobs.StartRefused) as exc:
        st.session_state[RUN_ERROR] = f"Run {run} cannot be resumed: {exc}"


def stop_run(root: Path, run: str) -> None:
    """The Stop button: ask the run's process to stop; say so if the request cannot be written."""
    st.session_state.pop(RUN_ERROR, None)
    try:
        jobs.stop(root, run)
    except OSError as exc:  # a full disk or a read-only folder: the request was not made
        st.session_state[RUN_ERROR] = f"Run {run} could not be asked to stop: {exc.strerror or exc}."


def field_error(where, widget_key: str) -> None:
    """The problem with this widget's value (or with the Start press, START), right under it."""
    message = st.session_state.get(ERRORS, {}).get(widget_key)
    if message:
        where.error(message, icon=":material/error:")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def progress(job: jobs.Job) -> None:
    """One bar: epochs completed of the target, with speed and time left while it trains."""
    s, done, target = job.status, job.epochs_done, max(job.target, 1)
    within = s.get("batch", 0) / s["batches"] if job.state == "running" and s.get("batches") else 0
    words = {"starting": "Starting: loading PyTorch and the data", "running": "Training",
             "stopping": "Stopping after the current step", "finished": "Finished", "stopped": "Stopped",
             "failed": "Failed", "lost": "Ended unexpectedly", "saved": "Saved"}.get(job.state, job.state)
    speed = f" · {s['images_per_s']:,.0f} images/s" if job.state == "running" and s.get("images_per_s") else ""
    eta = f" · about {_duration(s['eta_s'])} left" if job.state == "running" and s.get("eta_s") else ""
    if job.state == "lost" and job.complete:  # killed while it made the map after its last epoch
        words = "Trained, without its latent map"
    if job.state == "running" and isinstance(s.get("map"), (int, float)):  # after the last epoch, or a Stop
        st.progress(min(max(s["map"], 0.0), 1.0), text=f"{done} of {target} epochs done · computing the latent map "
                                                        f"of epoch {done} for the views (T-SNE): {s['map']:.0%}")
        st.caption("Stop training skips it; the Latent map view can compute it later.")
        return
    st.progress(min((done + within) / target, 1.0), text=f"{words} · {done} of {target} epochs done{speed}{eta}")


def _resume(root: Path, run: str, job: jobs.Job, has_checkpoint: bool) -> None:
    """Resume to the run's own target, at a tenth of the learning rate after a divergence."""
    done, target = job.epochs_done, job.target
    if job.state == "stopped":
        st.warning(f"Stopped after epoch {done} of {target}. Resume continues from there."
                   if has_checkpoint else f"Stopped before epoch 1 of {target} ended, so nothing was saved. "
                                          "Resume starts it again with the same settings.",
                   icon=":material/pause_circle:")
    lr_key = None
    if job.state == "failed" and "lower the learning rate" in job.message:  # it diverged
        lr_key = "train_resume_lr"
        st.number_input("Learning rate for the resumed run", step=1e-4, format=NUMBER_FORMAT, key=lr_key,
                        value=job.status.get("config", {}).get("lr", Config().lr) / 10)
    st.button(f"Resume to epoch {target}", icon=":material/play_arrow:", key="train_resume", type="primary",
              on_click=continue_run, args=(root, run, target, lr_key))


def _trained(root: Path, run: str, job: jobs.Job) -> None:
    """A run with a checkpoint and nothing left to train: links to its views, and Train longer."""
    done, target = job.epochs_done, job.target
    if job.state == "finished":
        st.success(f"Finished after epoch {done} of {target}.", icon=":material/check_circle:")
        if MAP_MISSING in job.message:  # the disk filled up while the map after training was saved
            missing = job.message[job.message.index(MAP_MISSING):]
            st.info(missing[:1].upper() + missing[1:] + ".", icon=":material/map:")
    links = st.columns(3)
    link("samples", "Its samples", links[0])
    link("reconstructions", "Its reconstructions", links[1])
    link("latent_map", "Its latent map", links[2])
    if run in jobs.SHIPPED_RUNS:
        st.caption(f"Run {run} is shipped with the app: it is not trained further from here.")
        return
    with st.popover("Train longer", icon=":material/fast_forward:"):
        st.number_input("Train on to epoch", min_value=done + 1, max_value=10_000, value=done + 10, step=1,
                        key="train_more")
        st.button("Continue", key="train_continue", on_click=continue_run, args=(root, run, "train_more"))


def actions(root: Path, run: str, job: jobs.Job) -> None:
    """What can be done with the run now: Stop, Resume to its target, train longer, look at it."""
    has_checkpoint = checkpoint_path(root, run).exists()
    resumable = has_checkpoint or isinstance(job.status.get("config"), dict)
    if job.state in ("starting", "running"):
        # Not plain "Stop": Streamlit's own "Stop" shows in the header while a page redraws, and it
        # interrupts the redraw only; pressed for this one, it would leave the run training.
        st.button("Stop training", icon=":material/stop:", key="train_stop", on_click=stop_run, args=(root, run))
        link("timeline", "Watch its latent space learn, epoch by epoch (Timeline)")
    elif job.state == "stopping":
        st.button("Stopping…", icon=":material/hourglass_top:", key="train_stop", disabled=True)
    elif job.state == "lost" and job.complete:  # killed after its last epoch: only the map is missing
        st.warning(job.message[:1].upper() + job.message[1:], icon=":material/warning:")
    elif job.state in ("failed", "lost"):
        st.error(f"The run failed: {job.message}", icon=":material/error:")
    if not job.active and not resumable and job.state != "none":
        st.info("It ended before its first epoch finished, so nothing was saved: "
                "start it again from the form above.", icon=":material/info:")
    elif not job.active and job.epochs_done < job.target:
        _resume(root, run, job, has_checkpoint)
    elif not job.active and has_checkpoint:
        _trained(root, run, job)
    if RUN_ERROR in st.session_state:
        st.error(st.session_state[RUN_ERROR], icon=":material/error:")


@st.cache_data(show_spinner=False, max_entries=32)
def preview_pictures(folder: str, version: tuple[int, int, int]) -> tuple[bytes, bytes, int] | None:
    """The preview's samples and digit pairs as PNG files, and its epochs done; drawn once per version of
    preview.npz (inode, mtime, size: each epoch replaces it), not at every redraw of the live view."""
    arrays = read_preview(Path(folder))
    if arrays is None:
        return None
    pairs = list(arrays["originals"]) + list(arrays["reconstructions"])
    return (png_bytes(grid(arrays["samples"], nrow=4, scale=3)),
            png_bytes(grid(pairs, nrow=len(arrays["originals"]), scale=2)), int(arrays["epochs_done"]))


def preview(root: Path, run: str, where) -> None:
    """The digits the trainer drew after its last epoch."""
    folder = run_dir(root, run)
    try:
        stat = (folder / PREVIEW_FILE).stat()
    except OSError:
        return
    pictures = preview_pictures(str(folder), (stat.st_ino, stat.st_mtime_ns, stat.st_size))
    if pictures is None:
        return
    samples, pairs, done = pictures
    where.image(samples, caption=f"16 prior samples (seed 0) after epoch {done}" if done
                else "16 prior samples, untrained")
    where.image(pairs, caption="8 test digits (top) and their reconstructions (bottom)")


def model_note(values: dict) -> str:
    """What the chart's figures are under the run's likelihood and beta, in a line or two."""
    try:
        config = Config.from_dict(values)
    except (ConfigError, TypeError):
        return ""
    objective = config.objective()
    plain_beta = config.beta != 1.0 and not (config.warmup or config.free_bits)
    weighted = ("" if not objective else
                f" The train curve is the β = {config.beta:g} objective, E_q[log p(x | z)] − {config.beta:g} · KL, "
                f"not the ELBO; the test curve is the ELBO." if plain_beta else
                f" The train curve is the training objective ({objective}), whose KL term is weighted or floored, "
                f"not the ELBO; the test curve is the ELBO.")
    note = LIKELIHOODS[config.likelihood].note
    return f"{note[:1].upper()}{note[1:]}.{weighted}"


def _chart(run: str, job: jobs.Job, history: dict, where) -> None:
    """The ELBO per image, train and test, with its note, and the ELBO's two parts on a toggle."""
    where.plotly_chart(elbo_figure(history, f"ELBO per image · run {run}"), key="train_chart", config=chart_config())
    saved = next((info.config.to_dict() for info in runs() if info.name == run), {})
    where.caption(model_note(job.status.get("config") or saved))
    if not where.toggle("Show the ELBO's two parts", key="train_parts", persist_state="session",
                        help="ELBO = E_q[log p(x | z)] − KL(q(z | x) ‖ p(z)): how well codes are decoded, less "
                             "what the codes cost. Measured at each test epoch."):
        return
    if history.get("split_epochs"):
        where.plotly_chart(parts_figure(history, f"The ELBO's parts · run {run}"), key="train_parts_chart",
                           config=chart_config())
        where.caption(f"Per image, with each test epoch's final weights: train on the first "
                      f"{SPLIT_TRAIN_IMAGES:,} training images, test on the test set.")
    else:
        where.caption("This run recorded no parts: it was trained before they were kept. Epochs "
                      "trained from now on record them at each test epoch.")


def every(active: bool) -> float:
    """Seconds between redraws of the live view: each second while the run trains, else every
    IDLE_SECONDS, so that this run resumed elsewhere (the CLI, another tab) shows within seconds, and a full
    rerun that never came is asked for again at the next redraw instead of never."""
    return LIVE_SECONDS if active else IDLE_SECONDS


def live(root: Path, run: str, active: bool, listed: bool) -> None:
    """The run's state, actions, chart and digits, redrawn every second while it trains; `active` and
    `listed` say whether the run trained, and whether the sidebar listed it (with a checkpoint), when the
    page was drawn: either changed, the whole page is drawn again."""
    job = jobs.job(root, run)
    st.subheader(f"Run {run}")
    progress(job)
    actions(root, run, job)
    history = job.history or {}
    chart, panel = st.columns([3, 2])
    if history.get("train_loss"):
        _chart(run, job, history, chart)
    elif job.active:
        chart.caption("The ELBO per image, train and test, is drawn here from the end of epoch 1.")
    preview(root, run, panel)
    if history.get("train_loss"):
        st.download_button("Download history (CSV)", history_frame(history).to_csv(index=False).encode(),
                           file_name=f"history-{run}.csv", mime="text/csv", icon=":material/download:",
                           key="train_csv")
    if active != job.active or (not listed and any(info.name == run for info in runs())):
        st.rerun()  # a full rerun sets the timer's pace (a Resume here) and lists a new checkpoint
