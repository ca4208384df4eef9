"""Finished examples: the shipped ones match the shipped models, open without training, and a build writes a
folder that opens again (or refuses, with the command to run, when it is missing or was made from other weights)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import feature_unlearning as fu
from feature_unlearning import examples
from feature_unlearning.cli import main
from feature_unlearning.session import Workspace

BUNDLED = [e.name for e in examples.EXAMPLES.values() if e.bundled]


def test_every_shipped_example_was_made_from_the_shipped_weights():
    states = {ex.name: state for ex, state in examples.status() if ex.bundled}
    assert states and all(state == "ready" for state in states.values()), states  # else: examples --build all


@pytest.mark.parametrize("name", BUNDLED)
def test_a_shipped_example_opens_with_its_model_feature_and_numbers(name):
    ex = examples.load(name)
    assert ex.model.name_or_path == ex.example.model
    report = ex.result.comparison
    assert report["share_after"] < report["share_before"] and report["n"] == examples.COMPARE_N
    assert report["judge"]["share_after"] < report["judge"]["share_before"]  # graded by a judge not in the loss
    # the unlearned model is another model: positives change, and the preview latents show both kinds
    z = ex.preview_z
    assert ex.preview_marked and len(ex.preview_marked) < len(z)
    assert not torch.allclose(fu.render(ex.model, z), fu.render(ex.result.unlearned, z))
    assert ex.info["made"]["command"] == f"feature-unlearning examples --build {name}"
    # the stored direction is the one the app's preset finds now
    fresh = fu.Feature.from_oracle(ex.model, ex.example.feature, n=examples.COLLECT_N, seed=examples.COLLECT_SEED)
    torch.testing.assert_close(fresh.direction, ex.feature.direction, atol=1e-5, rtol=0)


def test_a_workspace_opens_at_the_end_of_an_example():
    ws = Workspace.open_example("mnist-dcgan-without-thick", page_size=16)
    assert ws.n_samples == 16 and ws.preset == "thick"
    assert ws.marked == {int(i) for i in ws.oracle.labels(ws.images).nonzero().flatten()}  # the preset's marks
    assert ws.result is not None and ws.example["example"] == "mnist-dcgan-without-thick"
    before, after = ws.samples(3, n=4)
    assert before.shape == after.shape == (4, 1, 28, 28)
    ws.clear()  # changing the marks forgets the example's feature
    assert ws.feature is None and ws.example is None


@pytest.fixture
def tiny_example(monkeypatch, tmp_path):
    """An example built into a temporary cache in a few steps."""
    monkeypatch.setenv("FEATURE_UNLEARNING_CACHE", str(tmp_path))
    monkeypatch.setattr(examples, "COLLECT_N", 300)
    monkeypatch.setattr(examples, "COMPARE_N", 200)
    ex = examples.Example("tiny-without-thick", "Tiny", "mnist-dcgan", "thick", "thick",
                          config=dict(steps=3, batch_size=8, log_every=1), bundled=False)
    monkeypatch.setitem(examples.EXAMPLES, ex.name, ex)
    return ex


def test_missing_and_stale_examples_say_what_to_run(tiny_example):
    with pytest.raises(ValueError, match="feature-unlearning examples --build tiny-without-thick"):
        examples.load(tiny_example.name)
    folder = examples.build(tiny_example.name, log=lambda *_: None)
    assert folder == tiny_example.folder and folder.parent.parent == fu.hub.cache_root()
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md",
                                                   examples.EXAMPLE_FILE, examples.FEATURE_FILE}
    loaded = examples.load(tiny_example.name)
    assert loaded.info["config"]["steps"] == 3 and len(loaded.result.history.step) == 3
    info = json.loads((folder / examples.EXAMPLE_FILE).read_text())
    info["base_sha256"] = "0" * 64  # as if the base model had been retrained since
    (folder / examples.EXAMPLE_FILE).write_text(json.dumps(info))
    assert dict((e.name, s) for e, s in examples.status())[tiny_example.name] == "stale"
    with pytest.raises(ValueError, match="other mnist-dcgan weights.*--build tiny-without-thick"):
        examples.load(tiny_example.name)


def test_a_failed_build_leaves_the_old_example_untouched(tiny_example, monkeypatch):
    examples.build(tiny_example.name, log=lambda *_: None)
    before = {p.name: p.read_bytes() for p in tiny_example.folder.iterdir()}
    monkeypatch.setitem(examples.EXAMPLES, tiny_example.name,
                        dataclasses.replace(tiny_example, config=dict(steps=3, batch_size=8, lr=1e9, log_every=1)))
    with pytest.raises(fu.UnlearningDiverged):
        examples.build(tiny_example.name, log=lambda *_: None)
    assert {p.name: p.read_bytes() for p in tiny_example.folder.iterdir()} == before


def test_the_cli_lists_examples_and_refuses_unknown_names(capsys):
    assert main(["examples"]) == 0
    out = capsys.readouterr().out
    for name in examples.EXAMPLES:
        assert name in out
    assert main(["examples", "--build", "no-such-example"]) == 2
    assert "no example 'no-such-example'" in capsys.readouterr().err


def test_building_into_a_read_only_folder_fails_at_once_with_one_line(tiny_example, monkeypatch, capsys):
    # as root every folder is writable, so the read-only install is stood in for by os.access
    monkeypatch.setattr(examples.os, "access", lambda path, mode: False)
    monkeypatch.setattr(examples, "load_pretrained", lambda name: pytest.fail("no work before the check"))
    assert main(["examples", "--build", tiny_example.name]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not writable" in err and tiny_example.name in err
    assert not tiny_example.folder.exists()
