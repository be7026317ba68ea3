import math

import pytest
import torch

from vae_core.config import Config
from vae_core.train import (Callbacks, DeviceError, DivergedError, fit, is_test_epoch, kl_weight, new_state,
                            resolve_device)

from tests.conftest import tiny_config


def test_a_short_run_lowers_the_train_and_test_loss(trained):
    h = trained.history
    assert len(h.train_loss) == 3 and all(math.isfinite(x) for x in h.train_loss)
    assert h.train_loss[-1] < h.train_loss[0] - 20
    assert h.test_epochs == [0, 1, 2] and h.test_loss[-1] < h.test_loss[0]


def test_each_test_epoch_records_the_elbos_two_parts(trained):
    h = trained.history
    assert h.split_epochs == h.test_epochs == [0, 1, 2]
    assert all(r < 0 < kl for r, kl in zip(h.test_reconstruction + h.train_reconstruction, h.test_kl + h.train_kl))
    for reconstruction, kl, loss in zip(h.test_reconstruction, h.test_kl, h.test_loss):
        assert reconstruction - kl == pytest.approx(-loss, abs=2.0)  # one ELBO, two independent one-draw estimates


def test_same_seed_gives_identical_losses(small_mnist):
    runs = [fit(new_state(tiny_config()), small_mnist) for _ in range(2)]
    assert runs[0].to_dict()["train_loss"] == runs[1].to_dict()["train_loss"]
    assert runs[0].test_loss == runs[1].test_loss


def test_another_seed_gives_other_losses(small_mnist):
    a = fit(new_state(tiny_config(seed=0)), small_mnist)
    b = fit(new_state(tiny_config(seed=1)), small_mnist)
    assert a.train_loss != b.train_loss


def test_resumed_run_matches_an_uninterrupted_one(small_mnist):
    whole = new_state(tiny_config(epochs=4, test_every=2))
    fit(whole, small_mnist)

    first = new_state(tiny_config(epochs=2, test_every=2))
    fit(first, small_mnist)
    first.config = tiny_config(epochs=4, test_every=2)
    fit(first, small_mnist)

    assert first.history.train_loss == whole.history.train_loss
    # The interrupted run also tested its then-last epoch 1; the shared test epochs agree.
    resumed_tests = dict(zip(first.history.test_epochs, first.history.test_loss))
    assert whole.history.test_epochs == [0, 2, 3]
    assert [resumed_tests[e] for e in whole.history.test_epochs] == whole.history.test_loss
    for a, b in zip(first.vae.parameters(), whole.vae.parameters()):
        assert torch.equal(a, b)


def test_stop_flag_abandons_the_current_epoch_and_keeps_finished_ones(small_mnist):
    state = new_state(tiny_config(epochs=3))
    steps = []

    class Count(Callbacks):
        def on_batch(self, epoch, batch, n_batches, images, loss):
            steps.append((epoch, batch))

    fit(state, small_mnist, Count(), should_stop=lambda: len(steps) >= 10)  # 8 batches an epoch
    assert state.epoch == 1 and len(state.history.train_loss) == 1
    assert steps[-1] == (1, 1)


def test_callbacks_see_every_batch_test_and_epoch(small_mnist):
    seen = {"batch": [], "test": [], "epoch": []}

    class Record(Callbacks):
        def on_batch(self, epoch, batch, n_batches, images, loss):
            seen["batch"].append((epoch, batch, n_batches, images))

        def on_test(self, epoch, test_loss):
            seen["test"].append(epoch)

        def on_epoch_end(self, state):
            seen["epoch"].append(state.epoch)

    fit(new_state(tiny_config(epochs=2, batch_size=300, test_every=5)), small_mnist, Record())
    assert seen["batch"][:4] == [(0, 0, 4, 300), (0, 1, 4, 600), (0, 2, 4, 900), (0, 3, 4, 1024)]
    assert seen["test"] == [0, 1] and seen["epoch"] == [1, 2]


def _record_batches(seen: list) -> Callbacks:
    class Record(Callbacks):
        def on_batch(self, epoch, batch, n_batches, images, loss):
            seen.append((epoch, batch, n_batches, images, loss))

    return Record()


def test_losses_read_back_every_few_steps_train_the_same_run_and_reach_every_callback(small_mnist):
    # What a GPU run does (train.CUDA_READBACK_STEPS): the losses wait on the device and are read in one go.
    config = tiny_config(epochs=2, batch_size=100)  # 11 steps an epoch: reads after steps 4, 8 and the last
    runs_, seen = {}, {}
    for every in (1, 4):
        seen[every] = []
        runs_[every] = new_state(config)
        fit(runs_[every], small_mnist, _record_batches(seen[every]), readback_every=every)
    histories = [{k: v for k, v in state.history.to_dict().items() if k != "epoch_seconds"} for state in runs_.values()]
    assert histories[0] == histories[1] and len(seen[4]) == 22
    assert seen[4] == seen[1]  # every step, in order, with its images and loss
    weights = [torch.cat([p.flatten() for p in state.vae.parameters()]) for state in runs_.values()]
    assert torch.equal(*weights)


def test_a_diverging_step_is_named_whenever_its_loss_is_read_back(small_mnist):
    steps = []
    for every in (1, 5):
        state, seen = new_state(tiny_config(epochs=1, batch_size=64, lr=0.5)), []
        with pytest.raises(DivergedError, match=r"the loss became (nan|inf) at epoch 1, step \d+;") as diverged:
            fit(state, small_mnist, _record_batches(seen), readback_every=every)
        steps.append(diverged.value.step)
        assert [batch for _, batch, *_ in seen] == list(range(diverged.value.step - 1))  # the steps before it
        assert state.epoch == 0 and state.history.train_loss == []
    assert steps[0] == steps[1] > 1  # read late, the same step is named


def test_a_step_that_leaves_codes_of_scale_0_is_a_divergence_even_when_the_test_pass_finds_it(small_mnist):
    # One step per epoch at lr 1: the weights stay finite, but exp() of their log-scales gives z_scale 0
    # or inf, which Pyro's check of Normal(z_loc, z_scale) refuses in the test pass before any loss is NaN.
    state = new_state(tiny_config(epochs=2, batch_size=1024, lr=1.0))
    with pytest.raises(DivergedError, match=r"at epoch 1, step 1; lower the learning rate"):
        fit(state, small_mnist)
    assert state.epoch == 0 and state.history.train_loss == []  # nothing of the spoilt epoch is recorded


def test_test_epochs_are_zero_every_test_every_and_the_last():
    cfg = Config(epochs=12, test_every=5)
    assert [e for e in range(12) if is_test_epoch(cfg, e)] == [0, 5, 10, 11]


def test_the_kl_weight_rises_linearly_over_the_warm_up_then_stays_beta():
    assert [kl_weight(Config(beta=2.0, warmup=4), e) for e in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert [kl_weight(Config(beta=2.0), e) for e in range(3)] == [2.0, 2.0, 2.0]  # warmup 0: off


def test_a_warm_up_run_keeps_more_kl_after_its_first_epoch_than_a_plain_one(small_mnist, trained):
    # The first epoch weighs the KL term by beta/10: the codes spread further from the prior.
    warm = fit(new_state(tiny_config(epochs=1, warmup=10)), small_mnist)
    plain = trained.history  # the same run without warm-up; its first epoch trains as a 1-epoch run's
    assert warm.test_kl[0] > 1.5 * plain.test_kl[0]


def test_a_warm_up_of_one_epoch_trains_bit_for_bit_as_no_warm_up(small_mnist, trained):
    # Its weight is beta from the first epoch, through the very loss a plain run trains with.
    state = new_state(tiny_config(epochs=3, warmup=1))
    fit(state, small_mnist)
    assert state.history.train_loss == trained.history.train_loss
    for a, b in zip(state.vae.parameters(), trained.vae.parameters()):
        assert torch.equal(a, b)


def test_free_bits_above_every_dimensions_kl_leave_the_codes_unpushed_and_the_test_loss_the_elbo(
        small_mnist, trained):
    h = fit(new_state(tiny_config(epochs=1, free_bits=10.0)), small_mnist)
    floor = 50 * 10.0  # nats per image: each of the 50 dimensions adds at least its 10 free nats
    assert h.train_loss[0] > floor > h.test_loss[0]  # trained on the floored objective, tested on the ELBO
    assert h.test_kl[0] > 5 * trained.history.test_kl[0]  # nothing pulled the codes towards the prior


def test_jit_option_trains_too(small_mnist):
    h = fit(new_state(tiny_config(step="trace", jit=True)), small_mnist)
    assert h.train_loss[1] < h.train_loss[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_says_so():
    with pytest.raises(DeviceError, match="no usable CUDA GPU.*use device 'cpu'"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_matches_the_cpu_closely(small_mnist):
    cpu = fit(new_state(tiny_config()), small_mnist)
    gpu = fit(new_state(tiny_config(device="cuda")), small_mnist)
    assert gpu.train_loss[0] == pytest.approx(cpu.train_loss[0], rel=0.05)


def test_a_resumed_cli_run_keeps_the_thread_count_it_started_with(tmp_path):
    # The thread count can change a float sum's rounding (at batch 128 the losses part after an epoch
    # on 1 and 2 threads), so a run keeps the count chosen at its start, and a resume takes it again.
    from tests.cli_run import cli
    from vae_core import checkpoint as ckpt

    def train(*extra: str) -> None:
        out = cli("train", "--run", "t", "--limit", "512", "--batch-size", "128", *extra, checkpoints=tmp_path)
        assert out.returncode == 0, out.stderr

    train("--epochs", "1", "--threads", "2")
    assert ckpt.load_state(tmp_path / "t" / "checkpoint.pt").threads == 2
    train("--epochs", "2", "--resume")  # threads auto: the run's own 2, whatever the load now
    resumed = ckpt.load_state(tmp_path / "t" / "checkpoint.pt")
    train("--epochs", "2", "--threads", "2", "--overwrite")
    straight = ckpt.load_state(tmp_path / "t" / "checkpoint.pt")
    assert resumed.threads == 2 and resumed.history.train_loss == straight.history.train_loss
