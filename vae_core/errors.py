"""The failures the command line reports, in a module without torch.

    from vae_core.errors import UsageError, DeviceError, DivergedError, DataError

`python -m vae_core` parses and checks its arguments before it imports torch
(2 s here), so a usage mistake is answered at once; it can name these errors
only if they live apart from the modules that raise them.
"""


class UsageError(Exception):
    """A command-line mistake: reported with exit code 2."""


class DeviceError(RuntimeError):
    """The requested device is not available here."""


class DataError(RuntimeError):
    """An MNIST file is missing or corrupt; the message names it and the fix."""


class DivergedError(RuntimeError):
    """The loss stopped being a finite number; the epoch under way is lost, earlier ones are not."""

    def __init__(self, epoch: int, step: int, value: float) -> None:
        super().__init__(f"the loss became {value} at epoch {epoch}, step {step}; lower the learning rate "
                         f"(the tutorial's is 1e-3) and Resume")
        self.epoch, self.step = epoch, step  # both counted from 1
