"""The feature-unlearning command, end to end on tiny settings."""

import json
import subprocess
import sys

import pytest
import torch

import feature_unlearning as fu
from feature_unlearning.cli import main
from feature_unlearning.oracles import StrokeThickness


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "mnist-dcgan" in out and "bundled" in out and "pggan-celebahq-1024" in out


def test_sample_writes_a_png(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["sample", "--model", "mnist-vae", "--n", "8", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_direction_writes_traversal_and_direction(tmp_path, capsys):
    assert main(["direction", "--model", "mnist-dcgan", "--feature", "digit:8", "--n-collect", "600",
                 "--rows", "3", "--out", str(tmp_path)]) == 0
    stats = json.loads((tmp_path / "direction.json").read_text())
    assert stats["n_samples"] == 600 and 0 < stats["n_positive"] < 600
    assert (tmp_path / "traversal.png").stat().st_size > 0
    from safetensors.torch import load_file

    d = load_file(str(tmp_path / "direction.safetensors"))["direction"]
    assert d.shape == (32,) and abs(d.norm().item() - 1) < 1e-5


@pytest.mark.slow
def test_unlearn_end_to_end_writes_a_loadable_model_with_less_of_the_feature(tmp_path, capsys):
    out = tmp_path / "no-thick"
    code = main(["unlearn", "--model", "mnist-dcgan", "--feature", "thick", "--out", str(out), "--steps", "60",
                 "--n-collect", "1500", "--n-eval", "500"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "removed" in printed
    model, base = fu.load_pretrained(str(out)), fu.load_pretrained("mnist-dcgan")
    oracle = StrokeThickness()
    share = lambda m: oracle.labels(m.generate(1500, seed=3)).float().mean().item()  # noqa: E731
    assert share(model) < 0.6 * share(base)
    card = (out / "README.md").read_text()
    assert "thick" in card and "base_model: feature-unlearning/mnist-dcgan" in card and "share_before" in card


def test_unlearn_from_a_selection_file(tmp_path, classifier):
    """A user's clicks, saved as {seed, n, indices}: the 8s among 200 shown samples."""
    base = fu.load_pretrained("mnist-dcgan")
    shown = base.generate(200, seed=4)
    with torch.no_grad():
        eights = (classifier(shown).argmax(1) == 8).nonzero().squeeze(1).tolist()
    sel = tmp_path / "clicks.json"
    sel.write_text(json.dumps({"seed": 4, "n": 200, "indices": eights}))
    out = tmp_path / "no-clicked"
    assert main(["unlearn", "--model", "mnist-dcgan", "--feature", str(sel), "--out", str(out), "--steps", "5",
                 "--n-eval", "0", "--batch-size", "8", "--anchor", "0.05", "--set", "linear_positives=true",
                 "--set", "search_offsets=1.0,2.0"]) == 0
    assert isinstance(fu.load_pretrained(str(out)), type(base))
    card = (out / "README.md").read_text()  # the card's config table is the config the run used
    assert "| batch_size | 8 |" in card and "| anchor | 0.05 |" in card
    assert "| linear_positives | True |" in card and "| search_offsets | `(1.0, 2.0)` |" in card


@pytest.mark.parametrize(
    "argv, message",
    [
        (["unlearn", "--model", "mnist-dcgann", "--feature", "thick"], "unknown model"),
        (["unlearn", "--model", "mnist-dcgan", "--feature", "bangs"], "unknown feature"),
        (["direction", "--model", "mnist-dcgan", "--feature", "missing.json"], "no selection file"),
        (["unlearn", "--model", "mnist-dcgan", "--feature", "thick", "--set", "linear_positives=maybe"], "say true or false"),
        (["unlearn", "--model", "mnist-dcgan", "--feature", "thick", "--set", "stepz=3"], "not an UnlearnConfig field"),
        (["unlearn", "--model", "mnist-dcgan", "--feature", "thick", "--steps", "4", "--set", "steps=3"], "own option"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_degenerate_selection_and_existing_output(tmp_path, capsys):
    sel = tmp_path / "none.json"
    sel.write_text(json.dumps({"seed": 0, "n": 20, "indices": []}))
    assert main(["unlearn", "--model", "mnist-dcgan", "--feature", str(sel), "--out", str(tmp_path / "o")]) == 2
    assert "no positive samples" in capsys.readouterr().err
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["unlearn", "--model", "mnist-dcgan", "--feature", "thick", "--out", str(full)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (full / "keep.txt").read_text() == "mine"


def test_a_diverging_run_is_an_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "diverged"
    code = main(["unlearn", "--model", "mnist-dcgan", "--feature", "thick", "--lr", "1e9", "--steps", "20",
                 "--n-collect", "500", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "diverged at step" in err and "learning rate" in err and "Nothing was written" in err
    assert not out.exists()


def test_console_script_is_installed():
    res = subprocess.run([sys.executable, "-m", "feature_unlearning.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "unlearn" in res.stdout and "convert" in res.stdout
