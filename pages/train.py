"""Train: start, stop and resume runs, and watch the ELBO rise and the digits sharpen."""

import pandas as pd
import streamlit as st

from ui import jobs
from ui.figures import elbo_figure, grid
from ui.runs import RUN_KEY, checkpoints_root, open_page
from vae_core import checkpoint as ckpt
from vae_core import monitor
from vae_core.config import Config, ConfigError
from vae_core.train import DeviceError, resolve_device

open_page("pages/train.py")

st.title("Train")
root = checkpoints_root()
defaults = Config()


def fresh_name() -> str:
    """demo, demo-2, demo-3...: the first name no run has yet."""
    taken = {p.name for p in root.glob("*/")}
    return next(n for n in ("demo", *(f"demo-{i}" for i in range(2, 10_000))) if n not in taken)


live_slot = st.container()  # the watched run, drawn above the form once the form is handled
with st.expander("Start or resume a run", icon=":material/tune:",
                 expanded=not (st.session_state.get("watch") or st.session_state.get(RUN_KEY))):
    with st.form("train_form"):
        st.caption("The tutorial's settings are the defaults; lower the epochs or set a subset for a quick try.")
        name = st.text_input("Run name", value=fresh_name(), key="train_run",
                             help="Letters, digits, '-', '_' or '.'; the run's folder under checkpoints/.")
        c1, c2, c3, c4 = st.columns(4)
        epochs = c1.number_input("Epochs", value=defaults.epochs, step=1, key="train_epochs")
        lr = c2.number_input("Learning rate", value=defaults.lr, step=1e-4, format="%.4f", key="train_lr")
        batch_size = c3.number_input("Batch size", value=defaults.batch_size, step=1, key="train_batch")
        test_every = c4.number_input("Test every (epochs)", value=defaults.test_every, step=1, key="train_test_every")
        z_dim = c1.number_input("z_dim", value=defaults.z_dim, step=1, key="train_z_dim")
        hidden_dim = c2.number_input("Hidden units", value=defaults.hidden_dim, step=1, key="train_hidden")
        seed = c3.number_input("Seed", value=defaults.seed, step=1, key="train_seed")
        limit = c4.number_input("Subset: first N images (0 = all 60,000)", value=0, step=1000, key="train_limit")
        device = c1.selectbox("Device", ["cpu", "cuda"], key="train_device")
        jit = c2.checkbox("JitTrace_ELBO", value=False, key="train_jit")
        overwrite = c3.checkbox("Overwrite an existing run", value=False, key="train_overwrite")
        b1, b2, _ = st.columns([1, 1, 4])
        start = b1.form_submit_button("Start", type="primary", icon=":material/play_arrow:", width="stretch")
        resume = b2.form_submit_button("Resume", icon=":material/fast_forward:", width="stretch",
                                       help="Continue the run's checkpoint up to the epochs above.")


def form_config() -> Config:
    """The form's values as a Config; ConfigError says which value is wrong and what is allowed."""
    if int(limit) < 0:
        raise ConfigError(f"Subset must be 0 (all 60,000 images) or a number of images from 1 to 60000, "
                          f"got {int(limit)}")
    return Config(epochs=int(epochs), lr=float(lr), batch_size=int(batch_size), test_every=int(test_every),
                  z_dim=int(z_dim), hidden_dim=int(hidden_dim), seed=int(seed),
                  limit=int(limit) if int(limit) != 0 else None, device=device, jit=jit)


def launch(resume_run: bool) -> None:
    ckpt.validate_run_name(name)
    config = form_config()
    resolve_device(config.device)
    path = ckpt.checkpoint_path(root, name)
    if monitor.is_locked(path.parent):
        raise monitor.RunBusyError(f"Run {name!r} is running already: watch it below, or Stop it first.")
    if resume_run and not path.exists():
        raise FileNotFoundError(f"Run {name!r} has no checkpoint to resume yet; press Start to begin it.")
    if not resume_run and path.exists() and not overwrite:
        raise FileExistsError(f"Run {name!r} exists already: press Resume to continue it, tick "
                              f"'Overwrite an existing run' to start it anew, or choose another name.")
    jobs.start(root, name, config, resume=resume_run, overwrite=overwrite and not resume_run)
    st.session_state.watch = name


if start or resume:
    try:
        launch(resume_run=bool(resume))
    except (ConfigError, ckpt.RunNameError, DeviceError, monitor.RunBusyError,
            FileNotFoundError, FileExistsError) as exc:
        st.error(str(exc), icon=":material/error:")

watched = st.session_state.get("watch") or st.session_state.get(RUN_KEY)
if watched is None:
    live_slot.info("No run yet: fill in the form below and press Start.")
    st.stop()

active = jobs.job(root, watched).active
st.session_state.live_active = active


@st.fragment(run_every=1.0 if active else None)
def live(run: str) -> None:
    job = jobs.job(root, run)
    s = job.status
    st.subheader(f"Run {run}")
    epochs_total = s.get("epochs") or 1
    done = s.get("epoch", 0) + (s.get("batch", 0) / s["batches"] if s.get("batches") else 0)
    speed = f" · {s['images_per_s']:,.0f} images/s" if s.get("images_per_s") else ""
    eta = f" · about {_duration(s['eta_s'])} left" if s.get("eta_s") and job.active else ""
    st.progress(min(done / epochs_total, 1.0),
                text=f"{job.state} · epoch {s.get('epoch', 0)} of {epochs_total}{speed}{eta}")
    if job.active:
        if st.button("Stop", icon=":material/stop:", key="train_stop"):
            jobs.stop(root, run)
            st.toast(f"Stopping {run} after its current step…")
    elif job.state == "finished":
        st.success(f"Finished: {job.message}.", icon=":material/check_circle:")
    elif job.state == "stopped":
        st.warning(f"Stopped. {job.message}", icon=":material/pause_circle:")
    elif job.state in ("failed", "lost"):
        st.error(f"The run failed: {job.message}", icon=":material/error:")

    history = job.history or {}
    chart, panel = st.columns([3, 2])
    chart.plotly_chart(elbo_figure(history, f"ELBO per image · run {run}"), key="train_chart")
    preview = monitor.read_preview(ckpt.run_dir(root, run))
    if preview is not None:
        epoch = int(preview["epoch"])
        panel.image(grid(preview["samples"], nrow=4, scale=3),
                    caption=f"16 prior samples (seed 0) after epoch {epoch}" if epoch >= 0 else "16 prior samples, untrained")
        pairs = grid(list(preview["originals"]) + list(preview["reconstructions"]), nrow=len(preview["originals"]), scale=2)
        panel.image(pairs, caption="8 test digits (top) and their reconstructions (bottom)")
    if history.get("train_loss"):
        st.download_button("Download history (CSV)", history_csv(history), file_name=f"history-{run}.csv",
                           mime="text/csv", icon=":material/download:", key="train_csv")
    if st.session_state.get("live_active") and not job.active:
        st.session_state.live_active = False
        st.rerun()  # a full rerun turns the timer off and lists the new checkpoint


def history_csv(history: dict) -> bytes:
    """Epoch, train and test loss and ELBO per image, one row per epoch."""
    test = dict(zip(history.get("test_epochs", []), history.get("test_loss", [])))
    frame = pd.DataFrame({"epoch": range(len(history["train_loss"])), "train_loss": history["train_loss"]})
    frame["test_loss"] = frame["epoch"].map(test)
    frame["train_elbo"], frame["test_elbo"] = -frame["train_loss"], -frame["test_loss"]
    return frame.to_csv(index=False).encode()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


with live_slot:
    live(watched)
