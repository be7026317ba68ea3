"""A run's losses by epoch, as plain lists: the one definition the trainer, checkpoints, history.json and the
app read. No torch.

    from vae_core.history import History
    h = History.from_dict(json.loads(text))   # ValueError names the first field that is not what it should be
    h.to_dict()                               # {"train_loss": [...], "test_epochs": [...], ...}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """Losses per image by epoch, as plain lists: what a checkpoint and history.json hold."""
    train_loss: list[float] = field(default_factory=list)  # one per epoch
    test_epochs: list[int] = field(default_factory=list)  # 0-based indices of the tested epochs
    test_loss: list[float] = field(default_factory=list)  # one per entry of test_epochs
    epoch_seconds: list[float] = field(default_factory=list)
    # The ELBO's two parts at each test epoch, per image, with the epoch's final weights (on the first
    # vae_core.train.SPLIT_TRAIN_IMAGES training images and the test set): E_q[log p(x | z)] and
    # KL(q(z | x) || p(z)). Runs saved before they were kept have none, and a resumed one has them from
    # its resumption on.
    split_epochs: list[int] = field(default_factory=list)
    train_reconstruction: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    test_reconstruction: list[float] = field(default_factory=list)
    test_kl: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list]:
        """Plain lists, for checkpoints and JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> History:
        """The history `raw` holds (fields left out are empty); ValueError names the first field that is unknown
        or not a list of numbers (of whole numbers, for epoch indices)."""
        if not isinstance(raw, dict):
            raise ValueError(f"it is a {type(raw).__name__}, not a mapping of lists")
        kinds = {f.name: int if f.type == "list[int]" else (int, float) for f in dataclasses.fields(cls)}
        for name, values in raw.items():
            if name not in kinds:
                raise ValueError(f"it has an unknown field {name!r}")
            if not isinstance(values, (list, tuple)):
                raise ValueError(f"{name} is a {type(values).__name__}, not a list")
            bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, kinds[name])), None)
            if bad is not None:
                raise ValueError(f"{name} holds {bad!r}, not a {'whole number' if kinds[name] is int else 'number'}")
        return cls(**{name: list(values) for name, values in raw.items()})
