"""The Timeline view's charts: the codes at one epoch, KL per dimension by epoch, active units, the ELBO.

    from ui import timeline_figures as tf
    tf.codes_figure(xy[t], line, t, title, ranges)    # 10 digit traces on axes fixed over all epochs
    tf.kl_heatmap(line, epoch)                        # dimensions sorted by their final KL, the epoch marked
    tf.active_figure(line, epoch); tf.elbo_at(history, epoch)

No torch: the Timeline draws from the run's recorded frames, never from a model.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ui.figures import DIGIT_COLOURS, elbo_figure, latent_figure
from vae_core.timeline import Timeline

SIDE_HEIGHT = 250  # pixels of each chart beside the codes
MARK = {"line_dash": "dot", "line_color": "black", "line_width": 1.5}  # the slider's epoch on the curves


def codes_figure(xy: np.ndarray, line: Timeline, t: int, title: str,
                 ranges: tuple[tuple[float, float], tuple[float, float]]) -> go.Figure:
    """The subset's codes at frame `t` as placed on the map `xy` (n, 2), one trace per digit, on fixed `ranges`;
    hover: the digit, its test index and its mean z_scale."""
    fig = latent_figure(xy, line.labels, title, spread=line.scale[t])
    for digit, trace in enumerate(fig.data):  # latent_figure numbers points 0..n-1: here, their test indices
        mask = line.labels == digit
        trace.customdata = np.stack([line.indices[mask], line.scale[t][mask]], axis=1)
    fig.update_xaxes(range=ranges[0])
    fig.update_yaxes(range=ranges[1])
    fig.update_layout(uirevision="timeline")  # a zoom survives the slider's steps
    return fig


def kl_order(line: Timeline) -> np.ndarray:
    """The latent dimensions, largest KL at the last recorded epoch first."""
    return np.argsort(-line.kl[-1], kind="stable")


def kl_heatmap(line: Timeline, epoch: int, height: int = SIDE_HEIGHT) -> go.Figure:
    """KL(q(z_d | x) || p(z_d)) in nats of each dimension (rows, sorted by final KL) at each recorded epoch."""
    order = kl_order(line)
    fig = go.Figure(go.Heatmap(
        z=line.kl[:, order].T, x=line.epochs, y=[f"z{d}" for d in order], colorscale="Viridis",
        colorbar={"title": {"text": "nats"}, "thickness": 12},
        hovertemplate="epoch %{x}<br>%{y}: KL %{z:.3f} nats<extra></extra>"))
    fig.add_vline(x=epoch, **MARK)
    fig.update_layout(title="KL per dimension (nats)", height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title="epochs completed", yaxis_title="by final KL")  # a short title: a phone's modebar
    fig.update_yaxes(autorange="reversed", showticklabels=line.z_dim <= 16)
    return fig


def active_figure(line: Timeline, epoch: int, height: int = SIDE_HEIGHT) -> go.Figure:
    """Active units (Burda et al. 2015) at each recorded epoch, out of z_dim."""
    fig = go.Figure(go.Scatter(x=line.epochs, y=line.active, mode="lines+markers", name="active units",
                               line={"color": DIGIT_COLOURS[2]}, marker={"size": 5},
                               hovertemplate="epoch %{x}<br>%{y} active units<extra></extra>"))
    fig.add_vline(x=epoch, **MARK)
    fig.update_layout(title=f"Active units, of {line.z_dim}", height=height, xaxis_title="epochs completed",
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(range=[0, line.z_dim + 0.5])
    return fig


def elbo_curve(history: dict[str, list], epoch: int, height: int = SIDE_HEIGHT) -> go.Figure:
    """The run's ELBO per image, train and test, with the slider's epoch marked."""
    fig = elbo_figure(history, "ELBO per image")
    fig.add_vline(x=epoch, **MARK)
    fig.update_layout(height=height + 60, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.35})  # clear of the axis title on a short chart
    return fig


def elbo_at(history: dict[str, list], epoch: int) -> float | None:
    """The ELBO per image after `epoch` epochs: the test figure where it was measured, else the train figure."""
    test = dict(zip((e + 1 for e in history.get("test_epochs", [])), history.get("test_loss", [])))
    train = history.get("train_loss", [])
    loss = test.get(epoch, train[epoch - 1] if 0 < epoch <= len(train) else None)
    return None if loss is None else -float(loss)
