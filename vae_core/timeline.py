"""A run's timeline: the codes of a fixed subset of test digits, and KL per dimension, at each recorded epoch.

    from vae_core import timeline
    indices = timeline.subset(test_labels)         # 2,000 test digits, 200 of each, the same for every run
    timeline.write_frame(folder, timeline.Frame(epoch, loc, scale, kl, active, indices, labels))
    line = timeline.read_timeline(folder)          # None before the first frame
    line.epochs, line.loc[t], line.kl              # (T,), (2000, z_dim), (T, z_dim)

The trainer writes one frame per test epoch into `timeline/epoch-NNNN.npz`
(NNNN: epochs completed), each file replaced atomically, so a killed run keeps
every frame it wrote and a resume adds the next ones; `prune` removes frames
past a checkpoint's epoch (a resume after a kill between a frame and its
checkpoint trains that epoch again and writes it again) and all frames when a run
starts over. Codes are stored as float16 (2,000 x z_dim x 2 B: 200 kB a frame at the tutorial's z_dim);
a damaged frame is skipped, and read sizes are checked before any data is read
(vae_core.npz). No torch here: the app reads timelines before torch loads.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_core import npz
from vae_core.files import atomic_write
from vae_core.runs import TIMELINE_FOLDER

FOLDER = TIMELINE_FOLDER
PER_DIGIT = 200  # test digits of each class in the subset: 2,000 in all
SEED = 22  # the subset's seed: fixed, so every run's frames show the same digits
_FRAME = re.compile(r"epoch-(\d{4,6})\.npz")
MAX_FRAME_BYTES = 64 << 20  # a frame at z_dim 4,096 (the largest a Config allows) takes 16 MB
FRAME_SUBSET = 10 * PER_DIGIT


@dataclass(frozen=True)
class Frame:
    """What one recorded epoch holds."""
    epoch: int  # epochs completed when it was recorded (1 after the first)
    loc: np.ndarray  # (n, z_dim) z_loc of the subset's digits
    scale: np.ndarray  # (n,) each digit's z_scale averaged over the dimensions
    kl: np.ndarray  # (z_dim,) KL(q(z_d | x) || N(0, 1)) averaged over the whole test set, nats
    active: int  # active units over the whole test set (Burda et al. 2015: Var_x E_q[z_d] > 0.01)
    indices: np.ndarray  # (n,) the subset's test indices
    labels: np.ndarray  # (n,) their digits


@dataclass(frozen=True)
class Timeline:
    """A run's frames, in epoch order, stacked."""
    epochs: np.ndarray  # (T,) int, epochs completed
    loc: np.ndarray  # (T, n, z_dim) float32
    scale: np.ndarray  # (T, n) float32
    kl: np.ndarray  # (T, z_dim) float32, nats
    active: np.ndarray  # (T,) int
    indices: np.ndarray  # (n,) test indices, the same in every frame
    labels: np.ndarray  # (n,) digits
    skipped: tuple[str, ...] = ()  # frame files that could not be read, and why

    @property
    def z_dim(self) -> int:
        return int(self.loc.shape[2])

    def to_npz_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to export (np.savez): the same names as the fields."""
        return {"epochs": self.epochs, "loc": self.loc, "scale": self.scale, "kl": self.kl,
                "active": self.active, "indices": self.indices, "labels": self.labels}


def subset(test_labels: np.ndarray, per_digit: int = PER_DIGIT, seed: int = SEED) -> np.ndarray:
    """`per_digit` test indices of each digit, drawn once by `seed`, sorted: the same for every run."""
    labels = np.asarray(test_labels)
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels == d), size=per_digit, replace=False) for d in range(10)]
    return np.sort(np.concatenate(picked))


def frame_path(folder: Path, epoch: int) -> Path:
    """Where the frame of `epoch` (epochs completed) lives in run folder `folder`."""
    return Path(folder) / FOLDER / f"epoch-{epoch:04d}.npz"


def write_frame(folder: Path, frame: Frame) -> None:
    """Keep `frame` in the run folder, replacing one of the same epoch atomically (SaveError if it cannot)."""
    arrays = {"epoch": np.int64(frame.epoch), "loc": np.asarray(frame.loc, np.float16),
              "scale": np.asarray(frame.scale, np.float16), "kl": np.asarray(frame.kl, np.float32),
              "active": np.int64(frame.active), "indices": np.asarray(frame.indices, np.int32),
              "labels": np.asarray(frame.labels, np.uint8)}
    atomic_write(frame_path(folder, frame.epoch), lambda f: np.savez(f, **arrays))


def frame_epochs(folder: Path) -> list[int]:
    """The epochs with a frame file in `folder`, in order (their content unread)."""
    found = Path(folder) / FOLDER
    if not found.is_dir():
        return []
    return sorted(int(m.group(1)) for p in found.iterdir() if (m := _FRAME.fullmatch(p.name)))


def stamp(folder: Path) -> tuple:
    """Changes whenever a frame is added, replaced or removed: a key for caching what was read."""
    found = []
    for epoch in frame_epochs(folder):
        try:
            stat = frame_path(folder, epoch).stat()
        except OSError:  # removed since listed
            continue
        found.append((epoch, stat.st_ino, stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def prune(folder: Path, after: int) -> None:
    """Remove the frames of epochs past `after` (0: every frame, as when a run starts over)."""
    if after <= 0:
        shutil.rmtree(Path(folder) / FOLDER, ignore_errors=True)
        return
    for epoch in frame_epochs(folder):
        if epoch > after:
            frame_path(folder, epoch).unlink(missing_ok=True)


def read_frame(path: Path) -> Frame:
    """One frame file, its sizes checked before it is read; ValueError saying why it cannot be used."""
    arrays = npz.load_set(path, {"epoch": ((), np.integer), "loc": ((None, None), np.floating),
                                 "scale": ((None,), np.floating), "kl": ((None,), np.floating),
                                 "active": ((), np.integer), "indices": ((None,), np.integer),
                                 "labels": ((None,), np.integer)}, MAX_FRAME_BYTES)
    n, z_dim = arrays["loc"].shape
    if not (arrays["scale"].shape == arrays["indices"].shape == arrays["labels"].shape == (n,)
            and arrays["kl"].shape == (z_dim,)):
        raise ValueError(f"its arrays disagree: codes {arrays['loc'].shape}, KL {arrays['kl'].shape}, "
                         f"{arrays['indices'].shape[0]} indices")
    if not np.isfinite(arrays["kl"]).all():
        raise ValueError("its KL per dimension is not finite")
    return Frame(int(arrays["epoch"]), arrays["loc"].astype(np.float32), arrays["scale"].astype(np.float32),
                 arrays["kl"].astype(np.float32), int(arrays["active"]), arrays["indices"].astype(np.int64),
                 arrays["labels"].astype(np.int64))


def read_timeline(folder: Path) -> Timeline | None:
    """Every readable frame of the run in `folder`, stacked in epoch order; None if it has none.
    Frames of another subset or latent size than the last frame's are skipped, each with why."""
    frames, skipped = [], []
    for epoch in frame_epochs(folder):
        path = frame_path(folder, epoch)
        try:
            frame = read_frame(path)
        except Exception as exc:  # missing since listed, not a zip, cut short, hostile: the frame is skipped
            skipped.append(f"{path.name}: {exc}")
            continue
        if frame.epoch != epoch:
            skipped.append(f"{path.name}: it says epoch {frame.epoch}")
            continue
        frames.append(frame)
    if frames:
        last = frames[-1]
        fits = [f for f in frames if f.loc.shape == last.loc.shape and np.array_equal(f.indices, last.indices)]
        skipped += [f"{frame_path(folder, f.epoch).name}: another subset or latent size" for f in frames
                    if not any(f is g for g in fits)]
        frames = fits
    if not frames:
        return None
    return Timeline(np.array([f.epoch for f in frames]), np.stack([f.loc for f in frames]),
                    np.stack([f.scale for f in frames]), np.stack([f.kl for f in frames]),
                    np.array([f.active for f in frames]), frames[-1].indices, frames[-1].labels, tuple(skipped))
