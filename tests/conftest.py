import os
import threading
import time

import pytest
import torch

os.environ.setdefault("FEATURE_UNLEARNING_PROGRESS", "0")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def fresh_python():
    """Run a snippet in a new Python process (nothing imported yet) and return what it printed; fails the test
    with the snippet's stderr if it fails. For what a run imports, which only a fresh process shows."""
    import subprocess
    import sys

    def run(code: str) -> str:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    return run


@pytest.fixture(scope="session")
def dcgan():
    import feature_unlearning as fu

    return fu.load_pretrained("mnist-dcgan")


@pytest.fixture(scope="session")
def vae():
    import feature_unlearning as fu

    return fu.load_pretrained("mnist-vae")


@pytest.fixture(scope="session")
def classifier():
    import feature_unlearning as fu

    return fu.load_pretrained("mnist-classifier")


@pytest.fixture
def tiny_dcgan():
    from feature_unlearning.models import DCGANGenerator

    torch.manual_seed(0)
    return DCGANGenerator(latent_dim=8, base_channels=8).eval()


@pytest.fixture
def tiny_vae():
    from feature_unlearning.models import ConvVAE

    torch.manual_seed(0)
    return ConvVAE(latent_dim=4, base_channels=4, hidden_dim=16).eval()


@pytest.fixture
def wait_for_training_to_end():
    """Call it with a reason: fails unless the unlearning thread ("feature-unlearning") ends within 15 s."""

    def wait(reason: str) -> None:
        for _ in range(300):
            if not any(t.name == "feature-unlearning" for t in threading.enumerate()):
                return
            time.sleep(0.05)
        pytest.fail(f"the training thread kept running after {reason}")

    return wait
