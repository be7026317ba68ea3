"""The Train page's form: its widgets drawn from the Config's field metadata, its values checked as a Config.

    from ui.train_form import FORM_ROWS, defaults, widget, form_config
    widget(st, "hidden")                              # label, help, choices and kind come from Config's metadata
    config, errors = form_config(st.session_state)    # errors: widget key -> what is wrong, in the user's words

Every Config field the CLI takes is in the form, under the key "train_<field>".
A new field is one edit in vae_core.config plus its place in FORM_ROWS.
"""

from __future__ import annotations

from typing import Any

from vae_core.config import FIELDS, Config, ConfigError, check_field, format_value, parse_value

# The form's rows of three, in the order a phone stacks them: what a quick try changes first,
# then the optimiser, the KL term's weighting, then the model and where it trains; the step and JIT (how a
# step computes) go on the last row, beside Overwrite.
FORM_ROWS = [
    ["run", "epochs", "limit"],
    ["lr", "batch_size", "test_every"],
    ["beta", "warmup", "free_bits"],
    ["likelihood", "hidden", "activation"],
    ["z_dim", "seed", "device"],
    ["step", "jit"],
]
RUN_HELP = "Letters, digits, '-', '_' or '.'; the run's folder under checkpoints/."
# Steps of the number inputs' +/- buttons; whole numbers are typed into float inputs, so that
# "2.7" reaches the Config's check instead of being cut to 2.
STEPS = {"epochs": 1.0, "limit": 1000.0, "lr": 1e-4, "batch_size": 1.0, "test_every": 1.0, "z_dim": 1.0,
         "beta": 0.5, "warmup": 1.0, "free_bits": 0.25, "seed": 1.0}
# How number inputs print their value: "%g" keeps every digit that matters (5e-05 stays 5e-05, where
# "%.4f" showed 0.0001); the browser's sprintf writes it as JavaScript's shortest form, such as 0.00005.
NUMBER_FORMAT = "%g"


def key(field: str) -> str:
    """The session key of a field's widget."""
    return f"train_{field}"


def defaults() -> dict[str, Any]:
    """Each widget's first value: the tutorial's settings, as the widget holds them."""
    config = Config()
    values = {}
    for field in (f for row in FORM_ROWS for f in row if f != "run"):
        spec, value = FIELDS[field], getattr(config, field)
        values[key(field)] = (value if spec.choices or spec.kind in (bool, str)
                              else format_value(field, value) if spec.kind is tuple
                              else float(value or 0))  # limit None, all images, is 0 in the form as in the CLI
    return values


def widget(where, field: str) -> None:
    """Draw the field's widget in `where` (a column or st), from its metadata."""
    spec = FIELDS[field]
    common = {"key": key(field), "persist_state": "session", "help": spec.help}
    if spec.choices:
        where.selectbox(spec.label, tuple(spec.choices), **common)  # a registry's names, as they are now
    elif spec.kind is bool:
        where.checkbox(spec.label, **common)
    elif spec.kind is tuple:
        where.text_input(spec.label, placeholder="such as 400 or 200,200", **common)
    else:
        where.number_input(spec.label, step=STEPS[field], format=NUMBER_FORMAT, **common)


def form_config(values) -> tuple[Config | None, dict[str, str]]:
    """The form's values as a Config, or None and what is wrong, by widget key, in the user's words."""
    fields, problems = {}, {}
    for field in (f for row in FORM_ROWS for f in row if f != "run"):
        spec, value = FIELDS[field], values[key(field)]
        try:
            if spec.kind in (int, float) and not spec.choices:
                value = _number(field, value)
            elif spec.kind is tuple:
                value = parse_value(field, value)
            check_field(field, value)  # each value checked on its own, so every wrong one is named
            fields[field] = value
        except ConfigError as exc:
            problems[field] = exc.problem
    config = None
    if not problems:
        try:
            config = Config(**fields)
        except ConfigError as exc:  # two fields that do not go together: said under the one it names
            problems[exc.field] = exc.problem
    errors = {key(field): f"{FIELDS[field].label} {problem}." for field, problem in problems.items()}
    return config, errors


def _number(field: str, value: float) -> int | float | None:
    if FIELDS[field].kind is float:
        return float(value)
    if not float(value).is_integer():
        raise ConfigError.of(field, f"must be a whole number, got {value:g}")
    if field == "limit" and value < 0:
        raise ConfigError.of(field, f"must be 0 (all 60,000 images) or a number of images from 1 to 60000, "
                                    f"got {int(value)}")
    return parse_value(field, str(int(value)))  # limit 0 is None, all images
