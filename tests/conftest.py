"""Shared fixtures: real MNIST (loaded once) and a tiny trained run."""

from __future__ import annotations

import os

# Before torch loads (OpenMP reads it once): a torch thread that waits for another sleeps instead of
# spinning. The suite runs more workers than cores, so a spinning thread takes the core another worker
# needs: a 1-epoch CLI run on 512 digits beside a busy worker took 9-14 s spinning, 6-7 s passive.
# The app keeps OpenMP's default: on a quiet machine, passive threads made 2 epochs 20-30 % slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

# One torch thread in each test process: the suite runs a worker more than the cores (see
# pytest_xdist_auto_num_workers), and a worker's views, estimates and fixture runs on 2 threads took 10-20 %
# more CPU time for the same work (test loss, ELBO parts and 16-draw ELBOs of the test set: 2.2-2.3 CPU-s on
# 2 threads, 1.9-2.0 on 1). The processes the tests start (the CLI, the server, the fork server's children)
# choose their own, as they do outside the tests.
torch.set_num_threads(1)

from vae_core.config import Config
from vae_core.data import MNISTTensors, load_mnist
from vae_core.train import TrainState, fit, new_state

# Training runs started by the tests (the CLI's, the app's) skip the latent map cached after the last
# epoch (about 10 s of T-SNE each); tests/test_cli.py checks that map with the variable removed.
os.environ.setdefault("VAE_NO_MAP", "1")


def _scan_installed_components_once() -> None:
    """Streamlit's server scans the installed packages' metadata for components once, at its start; its
    AppTest scans again for every new AppTest, about 0.1 s each (12 % of the AppTest tests' time, measured
    with py-spy). The packages do not change while the suite runs, so each test process scans once, as a
    server does."""
    import functools

    from streamlit.components.v2 import manifest_scanner

    manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


_scan_installed_components_once()


@pytest.fixture(scope="session")
def mnist() -> MNISTTensors:
    return load_mnist()


@pytest.fixture(scope="session")
def small_mnist(mnist: MNISTTensors) -> MNISTTensors:
    """1,024 training and 1,024 test images: real digits, cheap epochs."""
    return MNISTTensors(mnist.train_images[:1024], mnist.train_labels[:1024],
                        mnist.test_images[:1024], mnist.test_labels[:1024])


def tiny_config(**overrides) -> Config:
    """The tutorial's model, trained briefly with small batches."""
    return Config(**{"epochs": 2, "batch_size": 128, "test_every": 1, **overrides})


@pytest.fixture(scope="session")
def trained(small_mnist: MNISTTensors) -> TrainState:
    """A run of 3 short epochs on 1,024 real digits."""
    state = new_state(tiny_config(epochs=3))
    fit(state, small_mnist)
    return state


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The real server over copies of the shipped runs, one per test worker, shared by the browser tests that
    only look at those runs (a test that trains has a server of its own): (its URL, its checkpoints folder)."""
    from tests.browser import _serve_shipped

    with _serve_shipped(tmp_path_factory.mktemp("shipped")) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.browser import _chromium

    executable = _chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


_OUTCOME = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report, kept on the test for its fixtures' teardown (the page fixture's, below)."""
    report = yield
    item.stash.setdefault(_OUTCOME, {})[report.when] = report
    return report


@pytest.fixture
def page(browser, request):
    """A fresh tab: a new Streamlit session. When the test fails, what each of its tabs shows is printed
    (the failure's report carries it, in CI's log too) and saved as a screenshot, failed-<test>-<n>.png."""
    from tests.browser import PATIENCE_MS, SCREENSHOTS

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(PATIENCE_MS)
    yield tab
    call = request.node.stash.get(_OUTCOME, {}).get("call")
    if call is not None and call.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for n, shown in enumerate(context.pages):
            try:
                shown.screenshot(path=str(SCREENSHOTS / f"failed-{request.node.name}-{n}.png"), full_page=True,
                                 timeout=30_000)
                print(f"--- tab {n} at {shown.url} when the test failed:\n{shown.inner_text('body', timeout=30_000)[:3000]}")
            except Exception as exc:  # a tab that no longer answers: say so, and go on with the others
                print(f"--- tab {n} at {shown.url} could not be read: {exc}")
    context.close()


def pytest_terminal_summary(terminalreporter):
    from tests.browser import SCREENSHOTS

    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")


def pytest_collection_modifyitems(config, items) -> None:
    """Spread the browser test files over the workers, heaviest first (a test marked slow weighs its
    marker's weight, 5 unless given, any other 1), each file at the head of one worker's share.

    xdist's worksteal gives each worker a slice of this order, in order (the last ones one test more when the
    count does not divide; a file that began one test early sat at the tail of the slice before, and ran last,
    stolen, 330 s into the suite). The browser tests wait on
    a server, Chromium and the runs they start, so one worker holding all of them (as the files' names
    put them together) ran them one after another for 320 of the suite's 370 s."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    files: dict[str, list] = {}
    for item in items:
        if item.path.name.startswith("test_browser"):
            files.setdefault(str(item.path), []).append(item)
    if workers < 2 or not files:
        return

    def weight(tests: list) -> int:
        marks = (test.get_closest_marker("slow") for test in tests)
        return sum(1 if mark is None else mark.kwargs.get("weight", 5) for mark in marks)

    shares: list[list] = [[] for _ in range(workers)]
    for tests in sorted(files.values(), key=weight, reverse=True):
        min(shares, key=weight).extend(tests)
    browser = {id(test) for tests in files.values() for test in tests}
    rest = [item for item in items if id(item) not in browser]
    order, left = [], len(items)
    for n, share in enumerate(shares):
        size = left // (workers - n)  # the slice worksteal sends this worker: the later ones take the remainder
        taken = max(0, size - len(share))
        order += share + rest[:taken]
        rest, left = rest[taken:], left - size
    items[:] = order + rest


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (pytest.ini): one worker more than the cores. Much of a test is waiting on another process
    (a trainer starting, the server, Chromium), and the extra worker fills those waits. Measured on 2 cores
    (whole suite, after the suite's threads began to wait passively): 3 workers 482 s, 4 workers 615 s."""
    from vae_core.cpu import cores

    return cores() + 1
