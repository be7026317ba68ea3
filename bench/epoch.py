"""One training epoch: the CLI's defaults vs the tutorial as published; the engine vs the tutorial's
pipeline vs a hand-written torch loss at one thread count.

    .venv/bin/python -m bench.epoch                 # full epochs (about 2 min on 2 cores)
    .venv/bin/python -m bench.epoch --batches 40    # the first 40 steps of each, quicker
    .venv/bin/python -m bench.epoch --published     # only the CLI's defaults vs the tutorial as published
    .venv/bin/python -m bench.epoch --published --app   # the same while the app serves Chromium

First, each in a fresh process with its own defaults:
  published: the tutorial's code as published: torch's default thread count,
            pyro.enable_validation(True) then the distributions' validation
            off, the DataLoader over torchvision MNIST with a per-item ToTensor
            and num_workers=1, pyro.module + SVI + pyro.optim.Adam
  cli:      `python -m vae_core train` with its defaults (threads chosen from
            the machine's load); its second epoch, which has no test pass
With --app, the real Streamlit server runs throughout and headless Chromium
shows its Train page: while the CLI trains, the page watches that run (its
progress, chart and digits redrawn every second, as a user sees it); while
the published tutorial runs, which the app cannot watch, the page stays open
on the last run. The tutorial thus gets the lighter load, so the ratio errs
against the CLI.
Then, in this process:
All three train the same architecture on the same 60,000 images at batch 256
with Adam lr 1e-3, one after the other in this process, with the same torch
thread count; the last line prints the ratios.
  engine:   vae_core.train.fit on preloaded tensors: its default step (fused), then step trace (Trace_ELBO)
  tutorial: the tutorial's code: DataLoader over torchvision MNIST with a
            per-item ToTensor, num_workers=1, pyro.module + SVI + pyro.optim.Adam;
            then the same with num_workers=0, so the decoding cost shows
  torch:    the engine's VAE with the same one-sample ELBO written by hand
Beside each, the floor: the same epoch's matrix products alone at the same thread count (bench/floor.py),
measured in the same run, and each pipeline as a multiple of it (issue 23's goal: the CLI at <= 1.6x).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from bench.floor import TRAIN_IMAGES, floor_epoch
from vae_core.config import Config
from vae_core.data import DEFAULT_ROOT, batches, load_mnist

from vae_core.model import VAE
from vae_core.train import Callbacks, fit, new_state


class _Budget(Callbacks):
    def __init__(self, n: int | None) -> None:
        self.n, self.steps = n, 0

    def on_batch(self, *args) -> None:
        self.steps += 1

    def __call__(self) -> bool:
        return self.n is not None and self.steps >= self.n


def engine_epoch(cfg: Config, mnist, n_batches: int | None) -> float:
    state = new_state(cfg)
    budget = _Budget(n_batches)
    start = time.perf_counter()
    fit(state, _no_test(mnist), budget, should_stop=budget)
    return time.perf_counter() - start


def torch_epoch(cfg: Config, mnist, n_batches: int | None) -> float:
    torch.manual_seed(cfg.seed)
    vae = VAE(cfg)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    prior = dist.Normal(torch.zeros(cfg.z_dim), torch.ones(cfg.z_dim))
    start = time.perf_counter()
    for i, x in enumerate(batches(mnist.train_images, cfg.batch_size, torch.Generator().manual_seed(0))):
        if n_batches is not None and i >= n_batches:
            break
        z_loc, z_scale = vae.encoder(x)
        q = torch.distributions.Normal(z_loc, z_scale)
        z = q.rsample()
        px = torch.distributions.Bernoulli(vae.decoder(z), validate_args=False)
        elbo = px.log_prob(x).sum(-1) + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
        loss = -elbo.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
    return time.perf_counter() - start


class TutorialVAE(nn.Module):
    """The tutorial's classes, as published (fc1/fc21/fc22, pyro.module, literal 784)."""

    def __init__(self, z_dim=50, hidden_dim=400):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, z_dim)
        self.fc22 = nn.Linear(hidden_dim, z_dim)
        self.fc3 = nn.Linear(z_dim, hidden_dim)
        self.fc4 = nn.Linear(hidden_dim, 784)
        self.softplus = nn.Softplus()
        self.sigmoid = nn.Sigmoid()
        self.z_dim = z_dim

    def encode(self, x):
        hidden = self.softplus(self.fc1(x.reshape(-1, 784)))
        return self.fc21(hidden), torch.exp(self.fc22(hidden))

    def decode(self, z):
        return self.sigmoid(self.fc4(self.softplus(self.fc3(z))))

    def model(self, x):
        pyro.module("decoder", self)
        with pyro.plate("data", x.shape[0]):
            z_loc = x.new_zeros(torch.Size((x.shape[0], self.z_dim)))
            z_scale = x.new_ones(torch.Size((x.shape[0], self.z_dim)))
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            loc_img = self.decode(z)
            pyro.sample("obs", dist.Bernoulli(loc_img, validate_args=False).to_event(1), obs=x.reshape(-1, 784))

    def guide(self, x):
        pyro.module("encoder", self)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = self.encode(x)
            pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))


def tutorial_epoch(cfg: Config, n_batches: int | None, workers: int = 1) -> float:
    pyro.clear_param_store()
    torch.manual_seed(cfg.seed)
    train_set = datasets.MNIST(root=str(DEFAULT_ROOT), train=True, transform=transforms.ToTensor(), download=False)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, num_workers=workers)
    vae = TutorialVAE(cfg.z_dim, cfg.hidden[0])
    svi = SVI(vae.model, vae.guide, Adam({"lr": cfg.lr}), loss=Trace_ELBO())
    start = time.perf_counter()
    for i, (x, _) in enumerate(loader):
        if n_batches is not None and i >= n_batches:
            break
        svi.step(x)
    return time.perf_counter() - start


def published_epoch(n_batches: int | None) -> float:
    """The tutorial as published, in this fresh process: its validation settings, torch's default threads."""
    pyro.enable_validation(True)
    dist.enable_validation(False)
    return tutorial_epoch(Config(epochs=1), n_batches, workers=1)


def published_in_fresh_process(n_batches: int | None) -> float:
    args = [sys.executable, "-m", "bench.epoch", "--published-child"] + (["--batches", str(n_batches)] if n_batches else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cli_epoch(n_batches: int | None, app: _App | None = None) -> tuple[float, int]:
    """`python -m vae_core train` with its defaults: the second epoch's seconds (no test pass in it), and the
    thread count it chose.
    With `app`, its browser watches the run on the Train page while it trains."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = app.root if app else Path(scratch)
        shutil.rmtree(folder / "bench", ignore_errors=True)
        args = [sys.executable, "-m", "vae_core", "train", "--run", "bench", "--checkpoints", str(folder),
                "--epochs", "3", "--test-every", "2", "--no-map"]  # tests after epochs 1 and 3 only
        if n_batches:
            args += ["--limit", str(n_batches * Config().batch_size)]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if app:
            app.watch(folder / "bench")
        if process.wait() != 0:
            raise SystemExit(f"the CLI failed: {process.stderr.read()[-2000:]}")
        history = json.loads((folder / "bench" / "history.json").read_text())
        threads = torch.load(folder / "bench" / "checkpoint.pt", weights_only=True).get("threads")
        return history["epoch_seconds"][1], threads or torch.get_num_threads()


class _App:
    """The real server over a scratch checkpoints folder, and Chromium open on its Train page."""

    def __init__(self, root: Path, port: int = 8597) -> None:
        from playwright.sync_api import sync_playwright

        from bench import serve

        self.root, self.url = root, f"http://localhost:{port}"
        self.server = serve.start(port, {"VAE_CHECKPOINTS": str(root)})
        serve.wait_until_healthy(port)
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=shutil.which("chromium"))
        self.page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.goto(f"{self.url}/train")
        self.page.wait_for_selector("h1:has-text('Train')", timeout=120_000)

    def watch(self, folder: Path) -> None:
        """Open Train once the run in `folder` trains: a new session picks the run that trains."""
        while (json.loads((folder / "status.json").read_text()) if (folder / "status.json").exists()
               else {}).get("state") != "running":
            time.sleep(0.05)
        self.page.goto(f"{self.url}/train")
        self.page.wait_for_selector(f"h3:has-text('Run {folder.name}')", timeout=120_000)

    def close(self) -> None:
        self.browser.close()
        self.playwright.stop()
        self.server.terminate()
        self.server.wait()


def _published_and_cli(args, app: _App | None = None) -> tuple[float, float]:
    published = published_in_fresh_process(args.batches)
    default_threads = torch.get_num_threads()
    print(f"published {published:8.2f} s   (the tutorial as published, {default_threads} default threads)")
    cli, threads = min(cli_epoch(args.batches, app) for _ in range(args.repeat))
    print(f"cli       {cli:8.2f} s   (python -m vae_core train, its defaults: {threads} threads; best of {args.repeat})")
    floors = {n: floor_epoch(n, images=_images(args.batches)) for n in sorted({default_threads, threads})}
    for n, seconds in floors.items():
        print(f"floor     {seconds:8.2f} s   (the epoch's matrix products alone, {n} threads: bench/floor.py)")
    print(f"against the floor: cli {cli / floors[threads]:.2f}x (goal <= 1.6x), "
          f"published {published / floors[default_threads]:.2f}x")
    return published, cli


def _images(n_batches: int | None) -> int:
    """Training images the timed steps cover."""
    return TRAIN_IMAGES if n_batches is None else min(TRAIN_IMAGES, n_batches * Config().batch_size)


@contextlib.contextmanager
def _spinning(busy: bool):
    """A process keeping one core busy for the duration, if `busy`."""
    if not busy:
        yield
        return
    from bench.threads import _spin

    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,))
    spinner.start()
    try:
        yield
    finally:
        stop.set()
        spinner.join()


def _no_test(mnist):
    """The same data with a one-image test set: the epoch timing excludes the test pass."""
    from vae_core.data import MNISTTensors
    return MNISTTensors(mnist.train_images, mnist.train_labels, mnist.test_images[:1], mnist.test_labels[:1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, help="time only the first N steps of each pipeline")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for all three (default 1)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of engine and torch; the fastest counts")
    parser.add_argument("--published", action="store_true", help="only the CLI's defaults vs the tutorial as published")
    parser.add_argument("--busy", action="store_true",
                        help="keep one core busy (a spinning process) while the CLI and the published tutorial run, "
                             "as the app's server and browser do beside a run")
    parser.add_argument("--app", action="store_true",
                        help="run the real server and Chromium throughout, the browser watching the CLI's run on Train")
    parser.add_argument("--published-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.published_child:
        print(published_epoch(args.batches))
        return
    with _spinning(args.busy), tempfile.TemporaryDirectory() as root:
        app = _App(Path(root)) if args.app else None
        try:
            published, cli = _published_and_cli(args, app)
        finally:
            if app:
                app.close()
    print(f"ratio: published/cli {published / cli:.2f}x (goal >= 3x quiet, >= 2x beside a busy core or the app)"
          + (" [one core kept busy]" if args.busy else "") + (" [the app serving Chromium]" if args.app else ""))
    if args.published:
        return
    torch.set_num_threads(args.threads)

    cfg = Config(epochs=1)
    mnist = load_mnist()
    steps = args.batches or "all"
    print(f"torch {torch.__version__}, pyro {pyro.__version__}, {args.threads} thread(s), steps per epoch: {steps}")
    engine = min(engine_epoch(cfg, mnist, args.batches) for _ in range(args.repeat))
    print(f"engine    {engine:8.2f} s   (its default step, fused: the ELBO in plain torch, torch's fused Adam)")
    trace = min(engine_epoch(replace(cfg, step="trace"), mnist, args.batches) for _ in range(args.repeat))
    print(f"engine    {trace:8.2f} s   (step trace: Pyro's Trace_ELBO, the per-tensor Adam)")
    hand = min(torch_epoch(cfg, mnist, args.batches) for _ in range(args.repeat))
    print(f"torch     {hand:8.2f} s")
    tutorial = tutorial_epoch(cfg, args.batches)
    print(f"tutorial  {tutorial:8.2f} s   (num_workers=1, as published: decoding runs on another core)")
    inline = tutorial_epoch(cfg, args.batches, workers=0)
    print(f"tutorial  {inline:8.2f} s   (num_workers=0: the per-item decoding in the training process)")
    floor = floor_epoch(args.threads, images=_images(args.batches))
    print(f"floor     {floor:8.2f} s   (the epoch's matrix products alone: bench/floor.py)")
    print(f"ratios: published/cli {published / cli:.2f}x (goal >= 3x), tutorial/engine {tutorial / engine:.1f}x, "
          f"tutorial-inline/engine {inline / engine:.1f}x, engine/torch {engine / hand:.2f}x (goal <= 1.15x)")
    print(f"against the floor: engine {engine / floor:.2f}x (goal <= 1.6x), engine-trace {trace / floor:.2f}x, "
          f"torch {hand / floor:.2f}x, tutorial {tutorial / floor:.2f}x, "
          f"tutorial-inline {inline / floor:.2f}x")


if __name__ == "__main__":
    main()
