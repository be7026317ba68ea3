"""The Train page's form: its fields, their order and labels, and its values checked as a Config.

    from ui.train_form import FIELDS, FORM_ROWS, form_config
    config, errors = form_config(st.session_state)   # errors: widget key -> what is wrong, in the user's words
"""

from __future__ import annotations

from vae_core.config import Config, ConfigError

# The form's widgets: session key -> (Config field, the label the user sees). Whole numbers are
# typed into float inputs, so that "2.7" reaches the check below instead of being cut to 2.
FIELDS = {
    "train_epochs": ("epochs", "Epochs"),
    "train_limit": ("limit", "Subset"),
    "train_lr": ("lr", "Learning rate"),
    "train_batch": ("batch_size", "Batch size"),
    "train_test_every": ("test_every", "Test every"),
    "train_z_dim": ("z_dim", "Latent dimensions"),
    "train_hidden": ("hidden_dim", "Hidden units"),
    "train_seed": ("seed", "Seed"),
    "train_device": ("device", "Device"),
    "train_jit": ("jit", "JitTrace_ELBO"),
}
WHOLE = ("epochs", "limit", "batch_size", "test_every", "z_dim", "hidden_dim", "seed")
# The form's rows of three (key, step, help), in the order a phone stacks them: what a quick try
# changes first, then the optimiser, then the network.
FORM_ROWS = [
    [("train_run", None, "Letters, digits, '-', '_' or '.'; the run's folder under checkpoints/."),
     ("train_epochs", 1.0, "Passes over the training images; the tutorial trains 100."),
     ("train_limit", 1000.0, "Train on the first N training images only; 0 means all 60,000.")],
    [("train_lr", 1e-4, "Adam's step size; the tutorial uses 0.001."),
     ("train_batch", 1.0, "Images per step; the tutorial uses 256."),
     ("train_test_every", 1.0, "Epochs between estimates of the test ELBO (it is also estimated after "
                               "the first and the last epoch).")],
    [("train_z_dim", 1.0, "z_dim, the size of the code z; the tutorial uses 50."),
     ("train_hidden", 1.0, "Units of the hidden layer of encoder and decoder; the tutorial uses 400."),
     ("train_seed", 1.0, "Seeds the weights, the shuffling and the sampling.")],
]


def form_config(values) -> tuple[Config | None, dict[str, str]]:
    """The form's values as a Config, or None and what is wrong, by widget key, in the user's words."""
    fields = {field: values[key] for key, (field, _) in FIELDS.items()}
    problems = {}
    for field in WHOLE:
        if not float(fields[field]).is_integer():
            problems[field] = f"must be a whole number, got {fields[field]:g}"
        else:
            fields[field] = int(fields[field])
    if "limit" not in problems and fields["limit"] < 0:
        problems["limit"] = f"must be 0 (all 60,000 images) or a number of images from 1 to 60000, got {fields['limit']}"
    fields["limit"] = fields["limit"] or None
    fields["lr"] = float(fields["lr"])
    for field, value in fields.items():  # each value checked on its own, so every wrong one is named
        if field not in problems:
            try:
                Config(**{field: value})
            except ConfigError as exc:
                problems[field] = exc.problem
    errors = {key: f"{label} {problems[field]}." for key, (field, label) in FIELDS.items() if field in problems}
    return (None if errors else Config(**fields)), errors
