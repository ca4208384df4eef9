"""feature_unlearning.session: one person's workspace (marks, pages, presets, the feature, runs) and the
streamed unlearning behind the app."""

import copy
import threading

import pytest
import torch

import feature_unlearning as fu
from feature_unlearning.oracles import StrokeThickness
from feature_unlearning.session import Workspace, unlearn_stream
from feature_unlearning.unlearn import UnlearnConfig

MODEL = "mnist-dcgan"



@pytest.fixture(scope="module")
def thick_workspace():
    ws = Workspace.open(MODEL, page_size=16)
    ws.use_preset("thick")
    ws.find_feature(n=1000)
    return ws


def test_workspace_marks_pages_and_presets(tmp_path):
    folder = fu.save_pretrained(fu.DCGANGenerator(latent_dim=8, base_channels=8).eval(), tmp_path / "tiny")
    ws = Workspace.open(str(folder), page_size=4)
    assert ws.toggle(2) and not ws.toggle(2) and ws.toggle(3)
    assert ws.add_page() == 1 and ws.n_samples == 8
    images, marked = ws.page(0)
    assert len(images) == 4 and marked == [3] and ws.page(1)[1] == []
    again = Workspace.open(str(folder), page_size=4)
    again.add_page()
    assert torch.equal(again.z, ws.z)  # pages are drawn from fixed seeds
    with pytest.raises(ValueError, match=r"no samples \[8, 9, 10, 11, 12, \.\.\.\]"):
        ws.set_marked(range(20))
    ws.clear()
    with pytest.raises(ValueError, match="nothing is marked"):
        ws.find_feature()
    with pytest.raises(ValueError, match="not a generator"):
        Workspace.open("mnist-classifier")
    rgb = fu.save_pretrained(
        fu.DCGANGenerator(latent_dim=8, base_channels=8, channels=3, image_size=32), tmp_path / "rgb"
    )
    faces = Workspace.open(str(rgb), page_size=4)
    with pytest.raises(ValueError, match="presets: only for 28x28 grey digits so far, and .* draws 3x32x32 images"):
        faces.use_preset("thick")
    faces.set_marked([0, 1])
    with pytest.raises(ValueError, match="from marks .* only for 28x28 grey digits"):
        faces.find_feature()


def test_a_preset_labels_new_pages_and_a_click_ends_it(thick_workspace):
    ws = copy.copy(thick_workspace)
    ws.marked = set(ws.marked)
    oracle = StrokeThickness()
    ws.add_page()
    expected = oracle.labels(ws.images).nonzero().flatten().tolist()
    assert sorted(ws.marked) == expected
    ws.toggle(0)
    assert ws.preset is None and ws.oracle is None and ws.feature is None


def test_unlearn_stream_reports_progress_then_the_model(thick_workspace):
    ws = thick_workspace
    reports = list(unlearn_stream(ws.feature, ws.model, UnlearnConfig(steps=20, log_every=5), preview_z=ws.preview_z))
    assert reports[-1].done and not any(r.done for r in reports[:-1])
    last = reports[-1]
    assert last.curves["step"] == [5, 10, 15, 20] and len(last.curves["loss"]) == 4
    assert last.preview.shape == (len(ws.preview_z), *ws.model.image_shape)
    assert torch.equal(last.preview, fu.render(last.model, ws.preview_z).cpu())
    assert not last.stopped_early and last.history.step == [5, 10, 15, 20]
    z = ws.preview_z
    assert not torch.equal(fu.render(ws.model, z), fu.render(last.model, z))  # trained a copy ...
    assert torch.equal(fu.render(ws.model, z), ws.preview())  # ... and left the original alone


def test_unlearn_stream_stops_when_asked_or_abandoned(thick_workspace, wait_for_training_to_end):
    ws = thick_workspace
    stop = threading.Event()
    stop.set()
    reports = list(unlearn_stream(ws.feature, ws.model, UnlearnConfig(steps=10_000, log_every=2), stop=stop))
    assert reports[-1].done and reports[-1].stopped_early and reports[-1].history.step[-1] < 10

    stream = unlearn_stream(ws.feature, ws.model, UnlearnConfig(steps=10_000, log_every=2))
    next(stream)
    stream.close()  # e.g. the browser went away
    wait_for_training_to_end("the stream was closed")


def test_unlearn_stream_raises_what_training_raised(thick_workspace):
    import dataclasses

    ws = thick_workspace
    bad = dataclasses.replace(ws.feature, direction=torch.zeros_like(ws.feature.direction))
    with pytest.raises(ValueError, match="non-zero"):
        list(unlearn_stream(bad, ws.model, UnlearnConfig(steps=5)))


def test_workspace_export_lands_in_its_own_folder_and_close_removes_it(tmp_path):
    folder = fu.save_pretrained(fu.DCGANGenerator(latent_dim=8, base_channels=8).eval(), tmp_path / "tiny")
    ws = Workspace.open(str(folder), page_size=8)
    ws.set_marked([0, 1, 2])
    ws.find_feature()
    with pytest.raises(ValueError, match="nothing unlearned yet"):
        ws.export()
    reports = list(ws.start_run(UnlearnConfig(steps=2, batch_size=4, log_every=1)))
    assert reports[-1].done and ws.result is not None and ws.result.unlearned is reports[-1].model
    first, second = ws.export(), ws.export()
    assert first == second and first.name == "tiny-without-selection.zip" and first.is_file()
    ws.close()
    assert not first.exists() and ws.stop.is_set()


def test_cancel_stops_a_run_and_keeps_the_model_so_far(thick_workspace):
    ws = copy.copy(thick_workspace)
    ws.stop, ws.result = threading.Event(), None
    run = ws.start_run(UnlearnConfig(steps=10_000, log_every=2))
    first = next(run)
    assert not first.done
    ws.cancel()
    last = list(run)[-1]
    assert last.done and last.stopped_early and last.step < 10_000
    assert ws.result is not None and ws.result.history.stopped_early
    assert ws.result.feature is ws.feature and ws.result.base_model == MODEL


def test_a_remote_run_is_abandoned_on_cancel(thick_workspace):
    """A runner in another process (ZeroGPU) can't see the stop event: the stream is closed instead."""
    ws = copy.copy(thick_workspace)
    ws.stop, ws.result = threading.Event(), None
    closed = []

    def runner(feature, model, config, *, preview_z):
        try:
            yield from unlearn_stream(feature, model, config, preview_z=preview_z)
        finally:
            closed.append(True)

    run = ws.start_run(UnlearnConfig(steps=10_000, log_every=2), runner=runner)
    next(run)
    ws.cancel()
    last = list(run)[-1]
    assert last.abandoned and not last.done and closed == [True] and ws.result is None


