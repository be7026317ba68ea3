"""Write docs/fidelity.md and docs/fidelity.png: the shipped run against the tutorial's published losses.

    .venv/bin/python -m docs.fidelity
    .venv/bin/python -m docs.fidelity --fused-run /tmp/fid/fused/checkpoint.pt   # keep a fused-step run's losses too

Reads the published 100-epoch run (docs/tutorial_run.csv, a copy of the
tutorial's printed losses), the history of checkpoints/tutorial (trained with
step trace, Pyro's Trace_ELBO) and docs/fused_run.csv, the losses of the same
run trained with the default step, fused (written from --fused-run's checkpoint).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vae_core import checkpoint as ckpt
from vae_core.runs import DEFAULT_ROOT, checkpoint_path

DOCS = Path(__file__).resolve().parent
# The epochs and losses the fidelity goal names, by the tutorial's 0-based index (the table adds 1):
# test at 0/5/10/50/95, train at 99.
CHECKED = [("test", 0), ("test", 5), ("test", 10), ("test", 50), ("test", 95), ("train", 99)]
TOLERANCE = 1.0  # nats per image


def comparison(published: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """One row per checked figure: kind, epoch, published, ours, difference."""
    rows = []
    for kind, epoch in CHECKED:
        column = f"{kind}_loss"
        a, b = published.loc[epoch, column], ours.loc[epoch, column]
        rows.append({"loss": kind, "epoch": epoch, "tutorial": a, "ours": b, "difference": b - a})
    return pd.DataFrame(rows)


def history_frame(state: ckpt.TrainState) -> pd.DataFrame:
    """The run's losses per epoch, test loss where measured."""
    h = state.history
    frame = pd.DataFrame({"train_loss": h.train_loss}, index=pd.RangeIndex(len(h.train_loss), name="epoch"))
    frame["test_loss"] = pd.Series(h.test_loss, index=h.test_epochs)
    return frame


def plot(published: pd.DataFrame, ours: pd.DataFrame, path: Path) -> None:
    """Both runs' train and test ELBO per epoch on one chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=120)
    for frame, name, style in ((published, "tutorial", "--"), (ours, "this project", "-")):
        ax.plot(frame.index + 1, -frame["train_loss"], style, color="#1F77B4", label=f"train ELBO, {name}")
        test = frame["test_loss"].dropna()
        ax.plot(test.index + 1, -test, style, marker="o", ms=4, color="#FF7F0E", label=f"test ELBO, {name}")
    ax.set(xlabel="epochs completed", ylabel="ELBO per image (nats)", ylim=(-160, -95),
           title="Pyro VAE tutorial on MNIST: published run vs this project's checkpoints/tutorial")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def fused_section(published: pd.DataFrame, fused_run: Path | None) -> list[str]:
    """The page's lines on the fused step: its run's checked losses against the tutorial's (docs/fused_run.csv)."""
    kept = DOCS / "fused_run.csv"
    if fused_run is not None:
        state = ckpt.load_state(fused_run)
        if state.config.step != "fused" or state.epoch != 100:
            raise SystemExit(f"{fused_run} holds {state.epoch} epochs of step {state.config.step}: train "
                             f"`python -m vae_core train --run fused` (100 epochs, the default step) first")
        history_frame(state).to_csv(kept)
    if not kept.exists():
        return []
    table = comparison(published, pd.read_csv(kept, index_col="epoch"))
    worst = table["difference"].abs().max()
    return [
        "## The fused step",
        "",
        "Runs train with the step `fused` by default (issue 23): the same ELBO estimator written in plain torch",
        "from the decoder's logits, with torch's fused Adam, equal to Trace_ELBO up to float rounding at every",
        "step (`tests/test_objectives.py`) but not bit for bit, so its run parts from the shipped one.",
        "Trained with `python -m vae_core train --run fused --threads 2 --no-map` (100 epochs, seed 0, every",
        "default), against the tutorial (its losses are kept in `docs/fused_run.csv`):",
        "",
        "| loss | epoch | tutorial | fused step | difference |",
        "|---|---:|---:|---:|---:|",
        *[f"| {r.loss} | {r.epoch + 1} | {r.tutorial:.2f} | {r.ours:.2f} | {r.difference:+.2f} |"
          for r in table.itertuples()],
        "",
        f"Largest difference: {worst:.2f} nats per image "
        f"({'within' if worst <= TOLERANCE else 'outside'} the {TOLERANCE:.0f} nat goal).",
        "",
    ]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fused-run", type=Path, help="checkpoint of a 100-epoch run of the fused step to keep")
    args = parser.parse_args()
    published = pd.read_csv(DOCS / "tutorial_run.csv", index_col="epoch")
    state = ckpt.load_state(checkpoint_path(DEFAULT_ROOT, "tutorial"))
    ours = history_frame(state)
    table = comparison(published, ours)
    plot(published, ours, DOCS / "fidelity.png")
    worst = table["difference"].abs().max()
    lines = [
        "# Fidelity: the shipped run against the tutorial's",
        "",
        "`checkpoints/tutorial/` was trained with `python -m vae_core train --run tutorial` (100 epochs,",
        "seed 0, the tutorial's defaults). Losses are the negative ELBO per image in nats, as the tutorial",
        "prints them; the published figures are in `docs/tutorial_run.csv`. Regenerate this page with",
        "`.venv/bin/python -m docs.fidelity`.",
        "",
        "Epochs are counted from 1, as everywhere in this project: epoch 1 is the one the tutorial",
        "prints as `[epoch 000]`.",
        "",
        "| loss | epoch | tutorial prints | tutorial | this project | difference |",
        "|---|---:|---|---:|---:|---:|",
        *[f"| {r.loss} | {r.epoch + 1} | `[epoch {r.epoch:03d}]` | {r.tutorial:.2f} | {r.ours:.2f} "
          f"| {r.difference:+.2f} |" for r in table.itertuples()],
        "",
        f"Largest difference: {worst:.2f} nats per image "
        f"({'within' if worst <= TOLERANCE else 'outside'} the {TOLERANCE:.0f} nat goal).",
        "",
        "![Train and test ELBO per epoch, both runs](fidelity.png)",
        "",
        *fused_section(published, args.fused_run),
    ]
    (DOCS / "fidelity.md").write_text("\n".join(lines))
    print(table.to_string(index=False))
    print(f"largest difference {worst:.2f} nats")


if __name__ == "__main__":
    main()
