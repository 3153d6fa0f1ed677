"""Suite-wide set-up: the --device option, the `device` fixture, and an isolated environment.

Node ids must stay stable: the mutation runner keys its results by them. Device parameters are
therefore always named after the device (`test_x[cpu]`, `test_x[cuda]`), in the order given.
"""

import os
import shutil
import tempfile

import pytest
import torch

KNOWN_DEVICES = ("cpu", "cuda")


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        default="cpu",
        help="comma-separated devices for device-parametrized tests, from: cpu,cuda (default: cpu)",
    )


def pytest_configure(config):
    _requested_devices(config)  # a bad --device is a usage error, before anything runs
    # Set before any test module imports nanochat or matplotlib: tests must never write into the
    # repository or a user's home, and plots must never open a window.
    config._nanochat_base_dir = tempfile.mkdtemp(prefix="nanochat-tests-")
    os.environ["NANOCHAT_BASE_DIR"] = config._nanochat_base_dir
    # hypothesis keeps caches in ./.hypothesis unless told otherwise
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(config._nanochat_base_dir, "hypothesis")
    os.environ["MPLBACKEND"] = "Agg"
    # The models here are tiny: one thread is as fast as several on an idle machine, and many
    # times faster on a busy one (a parallel op waits for its slowest thread), so pin it unless
    # the caller chose a thread count.
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def pytest_unconfigure(config):
    base_dir = getattr(config, "_nanochat_base_dir", None)
    if base_dir:
        shutil.rmtree(base_dir, ignore_errors=True)


def _requested_devices(config):
    names = [name.strip() for name in config.getoption("--device").split(",") if name.strip()]
    unknown = [name for name in names if name not in KNOWN_DEVICES]
    if unknown or not names:
        raise pytest.UsageError(f"--device takes a comma list from {','.join(KNOWN_DEVICES)}, got {names}")
    return list(dict.fromkeys(names))  # drop duplicates, keep the order given


def pytest_generate_tests(metafunc):
    if "device" not in metafunc.fixturenames:
        return
    params = []
    for name in _requested_devices(metafunc.config):
        marks = []
        if name == "cuda":
            marks = [
                pytest.mark.cuda,
                pytest.mark.skipif(
                    not torch.cuda.is_available(), reason="CUDA requested but torch.cuda.is_available() is False"
                ),
            ]
        params.append(pytest.param(name, id=name, marks=marks))
    metafunc.parametrize("device", params, indirect=True)


@pytest.fixture(scope="session")
def device(request):
    """The torch device name a test runs on ("cpu" or "cuda"), from --device.

    Session-scoped so that module fixtures (a shared model) can depend on it; it is only a name.
    """
    return request.param
