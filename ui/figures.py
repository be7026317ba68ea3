"""Figures and images for the views: Plotly charts, image grids, PNG bytes.

    from ui.figures import elbo_figure, latent_figure, grid, png_bytes
    st.plotly_chart(elbo_figure(history))
    st.image(grid(images, nrow=8), width=...)
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from PIL import Image

if TYPE_CHECKING:
    import pandas as pd
    import torch

# Ten clearly distinct colours, one per digit (d3's category10). Pyro's example
# uses nine, so 8 and 9 share a grey there; here every digit has its own.
DIGIT_COLOURS = ("#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD",
                 "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF")


def elbo_figure(history: dict[str, list], title: str = "ELBO per image") -> go.Figure:
    """Train ELBO after every epoch and test ELBO where it was estimated, by epochs completed."""
    train = [-x for x in history.get("train_loss", [])]
    done = list(range(1, len(train) + 1))  # epoch n's figure is plotted at n epochs completed
    test_done = [e + 1 for e in history.get("test_epochs", [])]  # stored as the tutorial's 0-based index
    fig = go.Figure()
    fig.add_scatter(x=done, y=train, mode="lines+markers", name="train ELBO",
                    marker={"size": 4, "color": DIGIT_COLOURS[0]}, line={"color": DIGIT_COLOURS[0]},
                    hovertemplate="epoch %{x}<br>train ELBO %{y:.2f}<extra></extra>")
    fig.add_scatter(x=test_done, y=[-x for x in history.get("test_loss", [])],
                    mode="lines+markers", name="test ELBO", line={"color": DIGIT_COLOURS[1]},
                    marker={"size": 8, "symbol": "diamond", "color": DIGIT_COLOURS[1]},
                    hovertemplate="epoch %{x}<br>test ELBO %{y:.2f}<extra></extra>")
    fig.update_layout(title=title, xaxis_title="epochs completed", yaxis_title="ELBO per image (nats)",
                      height=380, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(rangemode="tozero", dtick=1 if len(train) <= 12 else None)
    return fig


PARTS = ("train_reconstruction", "train_kl", "test_reconstruction", "test_kl")  # the ELBO's parts in a history


def parts_figure(history: dict[str, list], title: str) -> go.Figure:
    """The ELBO's two parts at each test epoch, train and test: E_q[log p(x | z)] and KL(q || p)."""
    done = [e + 1 for e in history.get("split_epochs", [])]
    fig = go.Figure()
    for name, colour, dash in zip(PARTS, (DIGIT_COLOURS[0], DIGIT_COLOURS[0], DIGIT_COLOURS[1], DIGIT_COLOURS[1]),
                                  ("solid", "dot", "solid", "dot")):
        label = name.replace("_", " ").replace("kl", "KL")
        fig.add_scatter(x=done, y=history.get(name, []), mode="lines+markers", name=label,
                        line={"color": colour, "dash": dash}, marker={"size": 6, "color": colour},
                        hovertemplate=f"epoch %{{x}}<br>{label} %{{y:.2f}}<extra></extra>")
    fig.update_layout(title=title, xaxis_title="epochs completed", yaxis_title="nats per image",
                      height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(rangemode="tozero")
    return fig


def history_frame(history: dict[str, list]) -> pd.DataFrame:
    """One row per epoch, counted from 1 as on the chart: train and test loss and ELBO per image, and the
    ELBO's parts where they were measured."""
    import pandas as pd  # imported by the entry already (streamlit_app.py says why); typed here, used here

    test = {e + 1: loss for e, loss in zip(history.get("test_epochs", []), history.get("test_loss", []))}
    train = history.get("train_loss", [])
    frame = pd.DataFrame({"epoch": range(1, len(train) + 1), "train_loss": train})
    frame["test_loss"] = frame["epoch"].map(test)
    frame["train_elbo"], frame["test_elbo"] = -frame["train_loss"], -frame["test_loss"]
    for name in PARTS:
        frame[name] = frame["epoch"].map(dict(zip((e + 1 for e in history.get("split_epochs", [])),
                                                  history.get(name, []))))
    return frame


def latent_figure(xy: np.ndarray, labels: np.ndarray, title: str, picked: int | None = None,
                  faded: bool = False, spread: np.ndarray | None = None, ends: go.Scattergl | None = None) -> go.Figure:
    """One WebGL scatter trace per digit (hover: digit, test index and, given `spread` (n,), the mean
    z_scale); `ends` (A and B, see ends_trace) over them; a ring on the picked point, last and on top;
    `faded` when something is drawn over the points."""
    fig = go.Figure()
    index = np.arange(len(labels))
    spread_line = "<br>mean z_scale %{customdata[1]:.3f}" if spread is not None else ""
    for digit in range(10):
        mask = labels == digit
        data = index[mask] if spread is None else np.stack([index[mask], spread[mask]], axis=1)
        fig.add_trace(go.Scattergl(
            x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=str(digit), customdata=data,
            marker={"size": 4, "color": DIGIT_COLOURS[digit], "opacity": 0.8 if picked is None and not faded else 0.3},
            hovertemplate=f"digit {digit}<br>index %{{customdata{'' if spread is None else '[0]'}}}"
                          f"{spread_line}<extra></extra>"))
    if ends is not None:
        fig.add_trace(ends)
    if picked is not None:
        fig.add_trace(go.Scattergl(
            x=xy[picked:picked + 1, 0], y=xy[picked:picked + 1, 1], mode="markers", name="picked",
            customdata=[picked], showlegend=False, hovertemplate="picked: index %{customdata}<extra></extra>",
            marker={"size": 16, "symbol": "circle-open", "color": "black", "line": {"width": 3}}))
    fig.update_layout(title={"text": title, "font": {"size": 15}}, height=600, plot_bgcolor="white",
                      # A map's axes carry no units: no ticks, so a phone gives the points its whole width.
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x", "scaleratio": 1},
                      # The legend just under the points, whatever the chart's height (a page may size it by CSS).
                      legend={"itemsizing": "constant", "orientation": "h", "yanchor": "top", "y": 0,
                              "title": {"text": "digit"}},
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def ends_trace(xy: np.ndarray, letters: list[str], labels: list[str], indices: list[int | None]) -> go.Scattergl:
    """A and B over a map, `xy` (k, 2): black discs lettered in white, unlike the picked point's open ring;
    hover names each one (`labels`, e.g. "test #42 (a 4)"); a click on one picks its test digit (`indices`,
    None for a drawing). WebGL, as the points are: an SVG trace would be drawn under them."""
    return go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers+text", name="A and B", text=letters, customdata=indices,
                      textposition="middle center", textfont={"size": 13, "color": "white"}, showlegend=False,
                      marker={"size": 24, "color": "black", "line": {"width": 2, "color": "white"}},
                      hovertext=[f"{letter}: {label}" for letter, label in zip(letters, labels)],
                      hovertemplate="%{hovertext}<extra></extra>")


def path_trace(xy: np.ndarray, name: str, dashed: bool = False) -> go.Scatter:
    """A path over a map: its points joined in order, the first and last marked A and B."""
    text = ["A"] + [""] * (len(xy) - 2) + ["B"]
    return go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="lines+markers+text", name=name, text=text,
                      textposition="top center", textfont={"size": 16, "color": "black"},
                      line={"color": "black", "width": 2, "dash": "dash" if dashed else "solid"},
                      marker={"size": 6, "color": "black"}, hovertemplate=f"{name}<extra></extra>")


def marker_trace(xy: np.ndarray, name: str) -> go.Scattergl:
    """One point drawn large over a map (a drawing's place); WebGL, so that it is drawn over the points."""
    return go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers+text", name=name, text=[name], textposition="top center",
                        textfont={"size": 14, "color": "black"}, marker={"size": 18, "symbol": "star", "color": "black"},
                        hovertemplate=f"{name}<extra></extra>")


def export_config(filename: str) -> dict:
    """Plotly modebar settings: PNG export at 2x with a telling file name."""
    return {"toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
            "displaylogo": False}


def map_png(xy: np.ndarray, labels: np.ndarray, title: str, ends: dict[str, np.ndarray] | None = None) -> bytes:
    """The map as a square PNG drawn on the server, for sharing: points coloured by digit, a digit legend,
    `title` over it (and in the file's Title field), A and B lettered where `ends` (letter -> (2,)) puts them."""
    # Matplotlib's object API (no pyplot): no global state, so a download's thread may draw beside others.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 8.6), dpi=150)  # 1200 x 1290 pixels: the points' square plus title and legend
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.09, 0.96, 0.84))
    for digit in range(10):
        mask = labels == digit
        ax.scatter(xy[mask, 0], xy[mask, 1], s=2.5, c=DIGIT_COLOURS[digit], alpha=0.8, linewidths=0,
                   label=str(digit), rasterized=True)
    for letter, (x, y) in (ends or {}).items():
        ax.scatter([x], [y], s=420, c="black", edgecolors="white", linewidths=1.5, zorder=3)
        ax.text(x, y, letter, color="white", fontsize=12, fontweight="bold", ha="center", va="center", zorder=4)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_axis_off()
    fig.suptitle(title, fontsize=13, y=0.975)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=10, title="digit", markerscale=4,
               frameon=False, fontsize=10, title_fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Title": title})
    return buffer.getvalue()


def labelled_rows(rows: dict[str, np.ndarray], title: str, scale: int = 4, padding: int = 2) -> np.ndarray:
    """Strips of images, one per entry of `rows` (name -> (steps, H, W) in [0, 1]), each named on its left,
    `title` above them all; one uint8 grey image, for a PNG that explains itself."""
    from PIL import ImageDraw, ImageFont

    strips = [grid(images, nrow=len(images), scale=scale, padding=padding) for images in rows.values()]
    font = ImageFont.load_default(size=6 * scale)
    label_width = 16 * scale + max(int(font.getlength(name)) for name in rows)
    title_height = 10 * scale
    width = label_width + max(s.shape[1] for s in strips)
    canvas = Image.new("L", (width, title_height + sum(s.shape[0] for s in strips)), 255)
    draw = ImageDraw.Draw(canvas)
    draw.text((4 * scale, title_height // 2), title, fill=0, font=ImageFont.load_default(size=5 * scale), anchor="lm")
    top = title_height
    for name, strip in zip(rows, strips):
        canvas.paste(Image.fromarray(strip), (label_width, top))
        draw.text((label_width - 4 * scale, top + strip.shape[0] // 2), name, fill=0, font=font, anchor="rm")
        top += strip.shape[0]
    return np.asarray(canvas)


def grid(images: np.ndarray | torch.Tensor, nrow: int | None = None, scale: int = 1,
         padding: int = 2) -> np.ndarray:
    """(n, H, W) images in [0, 1] as one uint8 grid image, each pixel repeated `scale` times."""
    # Imported when a grid is drawn: torch and torchvision take 4 s to import, and Home draws without them.
    import torch
    from torchvision.utils import make_grid

    t = torch.as_tensor(np.asarray(images, dtype=np.float32)).unsqueeze(1)  # (n, 1, H, W)
    nrow = nrow or math.ceil(math.sqrt(t.shape[0]))
    g = make_grid(t, nrow=nrow, padding=padding, pad_value=1.0)[0]  # (H', W'), grey
    if scale > 1:
        g = g.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    return (g.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def png_bytes(image: np.ndarray) -> bytes:
    """PNG file bytes of a uint8 image."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def runs_figure(histories: dict[str, dict[str, list]], objectives: dict[str, str]) -> go.Figure:
    """Each run's train ELBO (lines) and test ELBO (diamonds, dashed), one colour per run."""
    fig = go.Figure()
    for i, (run, history) in enumerate(histories.items()):
        colour = DIGIT_COLOURS[i % len(DIGIT_COLOURS)]
        train = [-x for x in history.get("train_loss", [])]
        label = f"{run}: train" + (f" ({objectives[run]} objective)" if objectives[run] else "")
        fig.add_scatter(x=list(range(1, len(train) + 1)), y=train, mode="lines", name=label,
                        line={"color": colour, "width": 1.5},
                        hovertemplate=f"{run}<br>epoch %{{x}}<br>train %{{y:.2f}}<extra></extra>")
        fig.add_scatter(x=[e + 1 for e in history.get("test_epochs", [])], y=[-x for x in history.get("test_loss", [])],
                        mode="lines+markers", name=f"{run}: test", line={"color": colour, "dash": "dash"},
                        marker={"size": 7, "symbol": "diamond", "color": colour},
                        hovertemplate=f"{run}<br>epoch %{{x}}<br>test ELBO %{{y:.2f}}<extra></extra>")
    fig.update_layout(title="ELBO per image", xaxis_title="epochs completed", yaxis_title="nats per image",
                      height=420, margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(rangemode="tozero")
    return fig


def runs_part_figure(histories: dict[str, dict[str, list]], part: str, title: str) -> go.Figure:
    """One of the ELBO's parts ("reconstruction" or "kl") for each run: test solid, train dotted."""
    fig = go.Figure()
    for i, (run, history) in enumerate(histories.items()):
        colour = DIGIT_COLOURS[i % len(DIGIT_COLOURS)]
        done = [e + 1 for e in history.get("split_epochs", [])]
        for split, dash in (("test", "solid"), ("train", "dot")):
            fig.add_scatter(x=done, y=history.get(f"{split}_{part}", []), mode="lines+markers",
                            name=f"{run}: {split}", line={"color": colour, "dash": dash}, marker={"size": 5},
                            hovertemplate=f"{run} {split}<br>epoch %{{x}}<br>%{{y:.2f}}<extra></extra>")
    fig.update_layout(title=title, xaxis_title="epochs completed", yaxis_title="nats per image", height=340,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend={"orientation": "h", "y": -0.3})
    fig.update_xaxes(rangemode="tozero")
    return fig


# Plotly's modebar, eight buttons wide, covers the right half of a chart's title on a 390 px phone (where a
# tap counts as a hover). Dragging still zooms and a double click still resets, so two buttons are enough.
KEPT_BUTTONS = ("toImage", "resetScale2d")
DROPPED_BUTTONS = ("zoom2d", "pan2d", "select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d",
                   "hoverClosestCartesian", "hoverCompareCartesian", "toggleSpikelines")


def chart_config(**extra) -> dict:
    """st.plotly_chart's config for every chart: a modebar of KEPT_BUTTONS alone, clear of the title; `extra`
    adds or overrides options (an export_config(...), staticPlot)."""
    return {"displaylogo": False, "modeBarButtonsToRemove": list(DROPPED_BUTTONS), **extra}


def sweep_figure(frame: pd.DataFrame, swept: list[str], figures: list[str]) -> go.Figure:
    """Small multiples of a sweep's final figures (a row each) against each swept setting (a column each): one
    point per run, its other settings in its hover. `frame` has a row per run, a column per setting and figure."""
    from plotly.subplots import make_subplots

    shown = [f for f in figures if frame[f].notna().any()]
    fig = make_subplots(rows=len(shown), cols=len(swept), shared_xaxes="columns", shared_yaxes="rows",
                        horizontal_spacing=0.06, vertical_spacing=0.08)
    for row, figure in enumerate(shown, start=1):
        for col, setting in enumerate(swept, start=1):
            others = [s for s in swept if s != setting]
            hover = [f"{run}<br>" + "<br>".join(f"{s} {frame.at[run, s]}" for s in others) for run in frame.index]
            fig.add_trace(go.Scatter(x=frame[setting].astype(str), y=frame[figure], mode="markers", showlegend=False,
                                     marker={"size": 9, "color": "#1F77B4"}, hovertext=hover,
                                     hovertemplate="%{hovertext}<br>" + f"{figure} " + "%{y:.2f}<extra></extra>"),
                          row=row, col=col)
            if row == len(shown):
                fig.update_xaxes(title_text=setting, type="category", row=row, col=col)
            if col == 1:
                fig.update_yaxes(title_text=figure, row=row, col=col)
    fig.update_layout(height=230 * len(shown) + 60, margin={"t": 30, "b": 10, "l": 10, "r": 10})
    return fig
