"""feature_unlearning.session: one person's workspace (marks, pages, presets, the feature, runs) and the
streamed unlearning behind the app."""

import copy
import threading

import pytest
import torch

import feature_unlearning as fu
from feature_unlearning.oracles import StrokeThickness
from feature_unlearning.directions import ALPHAS
from feature_unlearning.feature import Feature
from feature_unlearning.session import Workspace, check_settings, independent_judge, judge_name, unlearn_stream
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
    feature = faces.find_feature()  # no image feature extractor for a colour folder: the clicks give the direction
    assert not feature.image_oracle and "paper's rule" in feature.note
    assert faces.config(steps=2, lr=1e-3, alpha=1.0).method == "paper"


def test_clicks_on_a_model_without_an_image_judge_unlearn_by_the_papers_rule(tmp_path):
    rgb = fu.save_pretrained(
        fu.DCGANGenerator(latent_dim=8, base_channels=8, channels=3, image_size=32).eval(), tmp_path / "rgb"
    )
    ws = Workspace.open(str(rgb), page_size=8)
    ws.set_marked([0, 2, 5])
    ws.find_feature()
    *_, last = ws.start_run(ws.config(steps=2, lr=1e-3, alpha=1.0))
    assert last.done and ws.result.history.config["method"] == "paper"
    report = ws.compare(n=40)
    # nothing scores the feature in new images: no removal number, but what stayed is measured
    assert "removed" not in report and "share_after" not in report
    assert 0 < report["n_below_threshold"] <= 40 and 0 <= report["preservation"]["l1"] < 2
    before, after = ws.samples(seed=7, n=4)
    assert before.shape == after.shape == (4, 3, 32, 32) and torch.equal(before, ws.samples(seed=7, n=4)[0])
    assert not torch.equal(before, ws.samples(seed=8, n=4)[0])


@pytest.mark.parametrize(
    "steps, lr, alpha, message",
    [
        (2.5, 1e-4, 0.5, "steps must be a whole number, got 2.5"),
        (100_000_000, 1e-4, 0.5, "steps must be between 1 and 5000, got 100000000"),
        (0, 1e-4, 0.5, "steps must be between 1 and 5000"),
        (10, 1e9, 0.5, "learning rate must be between 1e-06 and 0.01, got 1000000000"),
        (10, 0, 0.5, "learning rate must be between"),
        (10, 1e-4, -1, "alpha must be between 0 and 10, got -1"),
        (10, float("nan"), 0.5, "learning rate must be a number"),
        (None, 1e-4, 0.5, "fill in the steps"),
    ],
)
def test_run_settings_out_of_bounds_are_refused_with_the_range(steps, lr, alpha, message):
    with pytest.raises(ValueError, match=message):
        check_settings(steps, lr, alpha)


def test_settings_inside_the_bounds_pass_as_numbers():
    assert check_settings(40.0, 3e-4, 0) == (40, 3e-4, 0.0)
    assert isinstance(check_settings(40.0, 3e-4, 0)[0], int)


def test_traversal_of_the_unlearned_model_and_clamped_alpha(thick_workspace):
    ws = thick_workspace
    assert torch.equal(ws.at_alpha(99.0), ws.at_alpha(ALPHAS[-1]))  # typed values outside the range clamp
    assert torch.equal(ws.at_alpha(-99.0), ws.at_alpha(ALPHAS[0]))
    other = fu.DCGANGenerator(latent_dim=ws.model.latent_dim).eval()
    assert not torch.equal(ws.at_alpha(1.0, model=other), ws.at_alpha(1.0))


def test_a_cancel_while_queued_is_kept_for_the_run(thick_workspace):
    ws = thick_workspace
    ws.queue_run()
    assert not ws.cancelled
    ws.cancel()
    assert ws.cancelled
    ws.queue_run()
    assert not ws.cancelled


def test_removal_of_a_digit_is_also_graded_by_the_independent_judge():
    ws = Workspace.open(MODEL, page_size=16)
    ws.use_preset("digit:1")
    feature = ws.find_feature(n=500)
    assert judge_name(feature).startswith("mnist-judge-resnet")
    *_, last = ws.start_run(ws.config(steps=2, lr=3e-4, alpha=0.5))
    report = ws.compare(n=200)
    judge = report["judge"]
    assert judge["name"].startswith("mnist-judge-resnet") and 0 < judge["share_before"] < 0.5
    # the judge is another classifier than the one that labelled: close but not the same numbers
    assert abs(judge["share_before"] - report["share_before"]) < 0.1
    assert "skeleton" in judge_name(Feature.from_oracle(ws.model, "thick", n=200))  # another stroke measure
    assert independent_judge(Feature.from_oracle(ws.model, "thick", n=200)).name == "judge:thick"


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


def test_unlearn_stream_trains_on_the_compute_thread_when_given(thick_workspace, monkeypatch):
    from feature_unlearning.utils import ComputeThread

    ws = thick_workspace
    where = []
    unlearn = Feature.unlearn
    monkeypatch.setattr(Feature, "unlearn", lambda *a, **k: where.append(threading.get_ident()) or unlearn(*a, **k))
    compute = ComputeThread(threads=2)
    try:
        *_, last = unlearn_stream(ws.feature, ws.model, UnlearnConfig(steps=4, log_every=2), compute=compute)
        assert last.done and last.model is not None
        assert where == [compute.submit(threading.get_ident).result()]
    finally:
        compute.close()


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




def test_a_diverged_run_keeps_the_last_good_model(thick_workspace):
    from feature_unlearning.unlearn import History, UnlearningDiverged

    ws = thick_workspace
    good = copy.deepcopy(ws.model)

    def runner(feature, model, config, *, preview_z):
        raise UnlearningDiverged("loss not finite at step 12", model=good, history=History(step=[10]), step=12,
                                 good_step=11)
        yield  # a generator, like unlearn_stream

    with pytest.raises(UnlearningDiverged):
        list(ws.start_run(ws.config(steps=20, lr=1e-3, alpha=0.5), runner=runner))
    assert ws.result is not None and ws.result.unlearned is good  # compare and export still work on it


def test_a_models_registry_recipe_shapes_the_click_feature_and_the_run(monkeypatch):
    import dataclasses

    entry = fu.hub.REGISTRY[MODEL]
    monkeypatch.setitem(fu.hub.REGISTRY, MODEL, dataclasses.replace(
        entry, extractor="mnist-classifier", clicks_direction=dict(n=300, seed=3, rule="balanced"),
        unlearn_defaults=dict(steps=7, lr=2e-4, batch_size=8)))
    ws = Workspace.open(MODEL, page_size=16)
    ws.set_marked([0, 3, 5, 9])
    feature = ws.find_feature()
    assert feature.stats["n_samples"] == 300 and feature.stats["n_clicked"] == 16  # relabelled by the click probe
    assert feature.stats["n_clicked_positive"] == 4 and feature.rule == "balanced"
    assert feature.image_oracle and "300 fresh samples" in feature.note
    config = ws.config()
    assert (config.steps, config.lr, config.batch_size, config.alpha) == (7, 2e-4, 8, UnlearnConfig().alpha)
    assert ws.config(steps=3, lr=1e-3, alpha=1.0).steps == 3  # what the user types wins
    monkeypatch.setitem(fu.hub.REGISTRY, MODEL, entry)  # without a recipe: the clicked latents' own direction
    assert ws.find_feature().stats["n_samples"] == 16 and ws.config().steps == UnlearnConfig().steps
