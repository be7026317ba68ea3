"""vae_core.config: each field's bounds and parsing, in the words the CLI and the Train form show.

The CLI and the form show these messages as they are: tests/test_cli.py and
tests/app/test_app_train.py check only that a ConfigError reaches the user.
"""

import json

import pytest

from vae_core import runs
from vae_core.config import Config, ConfigError, parse_value


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be between 1"),
    ("batch_size", 2.5, "batch_size must be a whole number"),
    ("lr", float("nan"), "lr must be more than 0 and at most 1"),
    ("device", "tpu", "device must be one of cpu, cuda"),
    ("limit", 0, "limit must be between 1"),
    ("z_dim", True, "z_dim must be a whole number"),
])
def test_bad_config_values_say_what_is_allowed(field, value, message):
    with pytest.raises(ConfigError, match=message):
        Config(**{field: value})


def test_config_round_trips_and_refuses_unknown_fields():
    cfg = Config(epochs=7, limit=100)
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown config field.*z_dims"):
        Config.from_dict({**cfg.to_dict(), "z_dims": 3})


@pytest.mark.parametrize("field, text, message", [
    ("z_dim", "1", r"z_dim must be between 2 and 4096, got 1 \(the views map codes in two dimensions: use at least 2\)"),
    ("epochs", "many", "epochs must be a whole number, got 'many'"),
    ("hidden", "", "hidden must be whole numbers of units separated by commas, such as 400 or 200,200, got ''"),
    ("hidden", "200,,200", "hidden must be whole numbers of units .* got '200,,200'"),
    ("hidden", "200,0", "hidden must have 1 to 65536 units in each layer, got 0"),
    ("hidden", ",".join(["8"] * 9), "hidden must list 1 to 8 layers"),
    ("beta", "0", "beta must be more than 0 and at most 1000, got 0.0"),
    ("beta", "nan", "beta must be more than 0 and at most 1000, got nan"),
    ("beta", "inf", "beta must be more than 0 and at most 1000, got inf"),
    ("beta", "much", "beta must be a number, got 'much'"),
    ("activation", "gelu", "activation must be one of softplus, relu, tanh, got 'gelu'"),
    ("warmup", "-1", r"warmup must be between 0 and 10000, got -1 \(0 turns warm-up off\)"),
    ("warmup", "2.5", "warmup must be a whole number, got '2.5'"),
    ("free_bits", "-0.5", r"free_bits must be between 0 and 10, got -0.5 \(0 turns free bits off\)"),
    ("free_bits", "nan", "free_bits must be between 0 and 10, got nan"),
    ("free_bits", "11", "free_bits must be between 0 and 10, got 11.0"),
])
def test_a_field_given_as_text_is_parsed_and_checked_naming_what_is_allowed(field, text, message):
    with pytest.raises(ConfigError, match=message):
        Config(**{field: parse_value(field, text)})


def test_warm_up_and_free_bits_are_off_by_default_and_may_be_0():
    assert (Config().warmup, Config().free_bits) == (0, 0.0)
    assert Config(warmup=0, free_bits=0.0) == Config()  # 0 is "off", not a value out of range as for beta


def test_a_run_saved_before_warm_up_and_free_bits_existed_loads_with_both_off():
    saved = json.loads((runs.DEFAULT_ROOT / "tutorial" / runs.RUN_FILE).read_text())["config"]
    assert "warmup" not in saved and "free_bits" not in saved
    config = Config.from_dict(saved)
    assert (config.warmup, config.free_bits) == (0, 0.0)


def test_a_run_saved_before_the_step_choice_resumes_with_the_step_it_trained_with():
    saved = json.loads((runs.DEFAULT_ROOT / "tutorial" / runs.RUN_FILE).read_text())["config"]
    assert "step" not in saved
    assert Config.from_dict(saved).step == "trace"  # Trace_ELBO: a resume must not change its arithmetic
    assert Config().step == "fused" and Config.from_dict(Config().to_dict()).step == "fused"


def test_jit_is_refused_beside_the_fused_step_and_says_which_step_it_needs():
    with pytest.raises(ConfigError, match="jit needs the training step trace: it compiles Pyro's Trace_ELBO") as refused:
        Config(jit=True)
    assert refused.value.field == "jit"
    assert Config(step="trace", jit=True).jit
