"""The Gradio app, driven through gradio_client against a launched server on a free localhost port.

The whole flow on the bundled model (preset, direction, traversal, unlearning, compare, download), marks by
number, the per-session state, Cancel, the ZeroGPU wrapper (with a stand-in ``spaces`` module), and the
bad inputs that must answer with a message instead of a crash. ``FEATURE_UNLEARNING_APP_MODEL`` picks
another model folder (default: the bundled ``mnist-dcgan``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import re
import socket
import sys
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from gradio_client import Client

from PIL import Image

import feature_unlearning as fu
from feature_unlearning.oracles import StrokeThickness

ROOT = Path(__file__).resolve().parents[1]
MODEL = os.environ.get("FEATURE_UNLEARNING_APP_MODEL", "mnist-dcgan")
TINY = {"collect_n": 1000, "compare_n": 1000}
UNLEARN_STEPS = 30
AMBER = np.array([255, 170, 0])


def _import_app():
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("app")
    finally:
        sys.path.remove(str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(app, **kwargs):
    demo = app.build_demo(default_model=MODEL, **{**TINY, **kwargs})
    port = _free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def app():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return _import_app()


@pytest.fixture(scope="module")
def url(app):
    demo, address = _serve(app)
    yield address
    demo.close()


@pytest.fixture
def client(url, tmp_path):
    return _client(url, tmp_path)


def _client(url, folder) -> Client:
    c = Client(url, verbose=False, analytics_enabled=False, download_files=str(folder))
    status = c.predict(None, MODEL, api_name="/load_model")[0]
    assert status.startswith("✓ Loaded"), status
    return c


def _amber_frames(grid_png: str, n: int = 32, nrow: int = 8, cell: int = 120) -> list[int]:
    """Indices of the grid's tiles whose top-left padding pixel is the highlight colour."""
    from PIL import Image

    pixels = np.asarray(Image.open(grid_png).convert("RGB"))
    out = []
    for i in range(n):
        r, c = divmod(i, nrow)
        if (pixels[r * cell + 1, c * cell + 1] == AMBER).all():
            out.append(i)
    return out


# -------------------------------------------------------------------------------- the whole flow


def test_whole_flow_removes_the_thick_strokes(client, tmp_path):
    status, grid, counts, marks, *_ = client.predict("thick", api_name="/use_preset")
    assert "thick strokes" in status and "thick strokes" in counts
    marked = [int(i) for i in marks.split(",") if i.strip()]
    assert _amber_frames(grid) == sorted(i for i in marked if i < 32)  # what the preset found is framed

    out = client.predict(0, api_name="/find_direction")
    status, traversal, histogram, live, note, *_, caption, steps, lr, alpha = out
    preview = out[8]
    assert status.startswith("✓ Direction found") and "1000 fresh samples" in status and "by 0 along" in caption
    assert Path(traversal).is_file() and Path(live).is_file() and Path(preview).is_file()
    assert histogram["type"] == "matplotlib" and "judge that scores every image" in note
    assert (steps, lr, alpha) == (400, 6e-4, 0.5)  # the run starts from the library's defaults

    _, caption, moved = client.predict(2.0, api_name="/traverse")
    assert "by +2.00 along" in caption
    assert "by +3.00 along" in client.predict(99, api_name="/traverse")[1]  # a typed value out of range clamps
    assert not np.array_equal(np.asarray(Image.open(moved)), np.asarray(Image.open(live)))

    status, bar, losses, preview, *_ = client.predict(UNLEARN_STEPS, 4e-4, 1.5, 2.0, api_name="/unlearn")
    assert status.startswith(f"✓ Unlearned in {UNLEARN_STEPS} steps"), status
    assert f'aria-valuenow="{UNLEARN_STEPS}"' in bar and "width:100.0%" in bar
    assert losses["type"] == "matplotlib" and Path(preview).is_file()
    # the traversal now shows the unlearned model under the original: twice as tall as before the run
    _, _, live_after = client.predict(2.0, api_name="/traverse")
    assert np.asarray(Image.open(live_after)).shape[0] > 2 * np.asarray(Image.open(moved)).shape[0]

    status, before_png, after_png, diff_png, details, fresh = client.predict(0, api_name="/compare")
    assert status.startswith("✓ On 1000 fresh samples. **Removed:** the feature went from"), status
    assert "**Kept:**" in status and "**Cost:**" in status
    values = dict(re.findall(r"<td><abbr[^>]*>([^<]+)</abbr></td><td>([^<]+)</td>", details))
    before = float(values["samples with the feature, before"].rstrip("%"))
    after = float(values["samples with the feature, after"].rstrip("%"))
    assert after < before and f"{before:.1f}% to {after:.1f}%" in status
    assert all(Path(p).is_file() for p in (before_png, after_png, diff_png, fresh))

    status, seed, redrawn = client.predict(0, api_name="/new_samples")
    assert seed == 1 and "seed 1" in status
    assert not np.array_equal(np.asarray(Image.open(redrawn)), np.asarray(Image.open(fresh)))

    status, zipped = client.predict(api_name="/export")
    assert status.startswith("✓ Packed") and zipped.endswith(".zip")
    with zipfile.ZipFile(zipped) as z:
        z.extractall(tmp_path / "unzipped")
    folder = next((tmp_path / "unzipped").iterdir())
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "README.md"}
    card = (folder / "README.md").read_text()
    assert "thick" in card and "share_after" in card  # the card carries the compare numbers ...
    for row in (f"| steps | {UNLEARN_STEPS} |", "| lr | 0.0004 |", "| alpha | 1.5 |"):  # ... and the settings used
        assert row in card, row
    unlearned, original = fu.load_pretrained(str(folder)), fu.load_pretrained(MODEL)

    oracle = StrokeThickness()
    z = original.sample_latent(2000, seed=12345)
    share = {
        name: oracle.share(fu.render(m, z))
        for name, m in (("original", original), ("unlearned", unlearned))
    }
    assert share["unlearned"] < 0.8 * share["original"], share


def test_a_finished_example_opens_at_once_with_every_step_filled_in(client, tmp_path):
    started = time.perf_counter()
    out = client.predict("mnist-dcgan-without-8", 0, 0, api_name="/open_example")
    took = time.perf_counter() - started
    status, model, picker, preset, marked, grid, counts = out[0], out[1], out[3], out[4], out[5], out[6], out[7]
    direction, traversal, run_status, bar, preview, verdict, before, after, diff, details, fresh = (
        out[9], out[10], out[14], out[15], out[17], out[18], out[20], out[21], out[22], out[23], out[24])
    steps, lr, alpha = out[-3:]
    assert status.startswith("✓ Opened **Digits without the 8**") and model.startswith("✓ Loaded **mnist-dcgan**")
    assert picker["value"] == "mnist-dcgan" and preset["value"] == "digit:8" and "preset **digit 8**" in marked
    assert direction.startswith("✓ Direction found") and run_status.startswith("✓ Finished example: unlearned in 400")
    assert 'aria-valuenow="400"' in bar and (steps, lr, alpha) == (400, 6e-4, 0.5)
    assert verdict.startswith("✓ On 2000 fresh samples. **Removed:**") and "mnist-judge-resnet" in verdict
    assert all(Path(p).is_file() for p in (grid, traversal, preview, before, after, diff, fresh))
    assert "<table" in details
    print(f"opened in {took:.1f} s")  # no training, no sampling beyond the example's own latents
    # the example is a result like any other: fresh samples, export
    status, seed, redrawn = client.predict(4, api_name="/new_samples")
    assert seed == 5 and Path(redrawn).is_file()
    status, zipped = client.predict(api_name="/export")
    assert status.startswith("✓ Packed mnist-dcgan-without-digit-8.zip"), status
    # a missing one says what to run, and leaves the session's model alone
    out = client.predict("digiface-dcgan64-without-glasses", 0, 0, api_name="/open_example")
    if "not made on this machine" in out[0]:
        assert "feature-unlearning examples --build digiface-dcgan64-without-glasses" in out[0]
    assert client.predict(0, api_name="/compare")[0].startswith("✓ On 1000 fresh samples")


def test_marks_by_number_frame_the_samples_and_define_the_feature(client):
    status, grid, counts, marks, *_ = client.predict("0, 3, 5-6", api_name="/set_marks")
    assert status == "4 samples marked." and marks == "0, 3, 5, 6"
    assert counts.startswith("**4 with the feature** · 28 without · marked by hand")
    assert _amber_frames(grid) == [0, 3, 5, 6]

    status, *_ = client.predict(0, api_name="/find_direction")
    assert status.startswith("✓ Direction found from your marks on 32 samples"), status
    assert "Tip: 4 marked is few for a probe" in status  # the digits' probe sits on the bundled classifier
    client.predict("0-21", api_name="/set_marks")
    status, *_ = client.predict(0, api_name="/find_direction")
    assert status.startswith("✓ Direction found from your marks on 32 samples") and "Tip" not in status, status

    # a second page keeps the marks of the first; marks are numbered across pages
    status, grid, counts, marks, *_ = client.predict(api_name="/more_samples")
    assert "page 2 of 2 (64 samples drawn)" in counts and _amber_frames(grid) == []
    status, grid, counts, marks, *_ = client.predict("0, 40", api_name="/set_marks")
    assert _amber_frames(grid) == [40 - 32]
    status, grid, counts, marks, *_ = client.predict(api_name="/clear_marks")
    assert counts.startswith("**0 with the feature** · 64 without")


def test_two_sessions_never_share_marks_or_models(url, tmp_path):
    a, b = _client(url, tmp_path / "a"), _client(url, tmp_path / "b")
    a.predict("1, 2", api_name="/set_marks")
    counts_b = b.predict(api_name="/more_samples")[2]
    assert counts_b.startswith("**0 with the feature** · 64 without")
    b.predict("7", api_name="/set_marks")
    _, _, counts_a, marks_a, *_ = a.predict(api_name="/more_samples")
    assert counts_a.startswith("**2 with the feature**") and marks_a == "1, 2"

    tiny = fu.DCGANGenerator(latent_dim=8, base_channels=8).eval()
    folder = fu.save_pretrained(tiny, tmp_path / "tiny")
    status = a.predict(None, str(folder), api_name="/load_model")[0]
    assert "latent dimension 8" in status
    status, *_ = b.predict(0, api_name="/find_direction")  # b still has its own model and its mark
    assert "too few samples" in status  # one mark: b's selection, not a's


def _wait_for_progress(job, seconds: float = 60) -> None:
    for _ in range(int(seconds * 10)):
        if any(str(out[0]).startswith("Step ") for out in job.outputs()):
            return
        time.sleep(0.1)
    pytest.fail(f"no progress report: {job.outputs()}")


def test_cancel_stops_a_run_and_keeps_the_model_so_far(client):
    client.predict("thick", api_name="/use_preset")
    client.predict(0, api_name="/find_direction")
    job = client.submit(5000, 3e-4, 1.0, 0, api_name="/unlearn")
    _wait_for_progress(job)
    assert client.predict(api_name="/cancel").startswith("Stopping")
    status = job.result(timeout=120)[0]
    assert re.match(r"Stopped at step \d+ of 5000", status), status
    status, *_ = client.predict(0, api_name="/compare")
    assert status.startswith("✓ On"), status  # the partly trained model can be compared


# ----------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_answer_with_messages(client, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as when there is no network
    status, *_ = client.predict(0, api_name="/find_direction")
    assert status.startswith("⚠") and "nothing is marked" in status

    client.predict("0-31", api_name="/set_marks")
    status, *_ = client.predict(0, api_name="/find_direction")
    assert "every sample is marked" in status

    assert "can't read 'x'" in client.predict("1, x", api_name="/set_marks")[0]
    assert "no samples [99]" in client.predict("99", api_name="/set_marks")[0]

    status, *_ = client.predict(10, 3e-4, 1.0, 0, api_name="/unlearn")
    assert "find the feature's direction first" in status
    assert "no feature direction yet" in client.predict(0, api_name="/compare")[0]

    client.predict("thick", api_name="/use_preset")
    client.predict(0, api_name="/find_direction")
    assert "nothing unlearned yet" in client.predict(0, api_name="/compare")[0]
    assert "nothing unlearned yet" in client.predict(api_name="/export")[0]
    for steps, lr, alpha, expected in [
        (0, 3e-4, 1.0, "the steps must be between 1 and 5000, got 0"),
        (100_000_000, 3e-4, 1.0, "the steps must be between 1 and 5000, got 100000000"),
        (2.5, 3e-4, 1.0, "the steps must be a whole number, got 2.5"),
        (5, 1e9, 1.0, "the learning rate must be between 1e-06 and 0.01, got 1000000000"),
        (5, -1, 1.0, "the learning rate must be between"),
        (5, 3e-4, 50, "alpha must be between 0 and 10, got 50"),
    ]:
        status, *_ = client.predict(steps, lr, alpha, 0, api_name="/unlearn")
        assert status.startswith("⚠") and expected in status, status

    # a reversed range is refused and the marks stay as they were
    _, _, _, marks, *_ = client.predict("0, 3", api_name="/set_marks")
    status, *_ = client.predict("5-2", api_name="/set_marks")
    assert "the range '5-2' runs backwards: write it as 2-5" in status
    assert marks == "0, 3" and "**2 with the feature**" in client.predict(api_name="/more_samples")[2]
    client.predict("thick", api_name="/use_preset")
    client.predict(0, api_name="/find_direction")

    for name, expected in [
        ("no-such-org/no-such-model", "can't load no-such-org/no-such-model"),  # offline: not in the cache
        ("not a model", "unknown model 'not a model'"),
        ("mnist-classifier", "not a generator"),
        ("", "no model given"),
    ]:
        status = client.predict(None, name, api_name="/load_model")[0]
        assert status.startswith("⚠") and expected in status, status
        assert status.endswith(f"Still working with {MODEL}."), status
    # the session kept its model and its feature through the failed loads
    status, *_ = client.predict(3, 3e-4, 1.0, 0, api_name="/unlearn")
    assert status.startswith("✓ Unlearned in 3 steps"), status

    assert "not a Hub repo id" in client.predict("no slash", "tok", True, api_name="/push")
    assert "needs a token with write access" in client.predict("me/model", "", True, api_name="/push")
    status = client.predict("me/model", "hf_fake", True, api_name="/push")
    assert status.startswith("⚠ couldn't push to the Hub") and "Export the zip" in status


def test_a_session_without_a_model_says_so(url, tmp_path):
    c = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    for api, args in [("/more_samples", ()), ("/find_direction", (0,)), ("/compare", (0,)), ("/export", ())]:
        assert "no model loaded yet" in c.predict(*args, api_name=api)[0]
    assert "no model loaded yet" in c.predict(10, 3e-4, 1.0, 0, api_name="/unlearn")[0]


# ------------------------------------------------------------------------------------------ faces

FACES = "digiface-dcgan64"
needs_faces = pytest.mark.skipif(
    importlib.util.find_spec("gan_face_generate") is None, reason="pip install gan-face-generate for the face model"
)


@needs_faces
def test_the_picker_offers_what_loads_here_and_lists_the_rest_with_what_they_need(app):
    offered, others = app.model_choices()
    labels = dict((name, label) for label, name in offered)
    assert labels["mnist-dcgan"] == "mnist-dcgan · bundled"
    assert labels[FACES] == f"{FACES} · installed from the pip package gan-face-generate"
    assert "from the Hub" not in " ".join(labels.values())
    for name in ("pggan-celebahq-1024", "pgan-celeba-128"):
        if fu.hub.REGISTRY[name].where() != "converted (cached)":
            assert name not in labels
            line = next(line for line in others if f"**{name}**" in line)
            assert f"needs a network once: `feature-unlearning convert {name}`" in line


@needs_faces
def test_face_clicks_become_a_probe_on_the_bundled_face_encoder(client):
    client.predict(FACES, "", api_name="/load_model")
    client.predict("1, 4, 9, 12", api_name="/set_marks")
    out = client.predict(0, api_name="/find_direction")
    status, note, (steps, lr, alpha) = out[0], out[4], out[-3:]
    assert status.startswith("✓ Direction found from your marks on 32 samples: a probe learnt from them labelled "
                             "5000 fresh samples"), status
    assert "Tip: 4 marked is few for a probe" in status and "**More samples**" in status
    assert "a judge that scores every image" in note and "paper's rule" not in note
    assert (steps, lr, alpha) == (500, 3e-4, 2.0)  # the face model's own defaults (benchmarks/faces.py)


@needs_faces
def test_faces_unlearn_from_clicks_by_the_papers_rule_and_say_so(client, monkeypatch):
    import dataclasses

    # a face model without an image feature extractor (as the CelebA GANs are): the clicks give the direction only
    entry = fu.hub.REGISTRY[FACES]
    monkeypatch.setitem(fu.hub.REGISTRY, FACES, dataclasses.replace(entry, extractor=None))
    status, terms, *_ = client.predict(FACES, "", api_name="/load_model")
    assert status.startswith(f"✓ Loaded **{FACES}**") and "images 3×64×64" in status
    assert "non-commercial research" in terms and "DigiFace-1M" in terms
    _, grid, counts, *_ = client.predict("1, 4, 9", api_name="/set_marks")
    assert _amber_frames(grid, cell=64 * 2 + 8) == [1, 4, 9]  # faces drawn at 128 px, framed when marked
    assert Image.open(grid).size == (8 * 136, 4 * 136)
    out = client.predict(0, api_name="/find_direction")
    status, note, alpha = out[0], out[4], out[-1]
    assert status.startswith("✓ Direction found from your marks on 32 samples"), status
    assert "Tip:" not in status  # no probe here, so no advice about one
    assert "by the paper's rule" in note and "no count of the feature" in note and alpha == 1.0
    status, *_ = client.predict(2, 3e-4, alpha, 0, api_name="/unlearn")
    assert status.startswith("✓ Unlearned in 2 steps by the paper's rule"), status
    status, before, after, diff, details, fresh = client.predict(0, api_name="/compare")
    assert "**Removed:** not counted" in status and "**Kept:** the other samples stay" in status, status
    assert "samples with the feature" not in details and "how alike the other samples stay" in details
    assert all(Path(p).is_file() for p in (before, after, diff, fresh))


@needs_faces
def test_a_failed_load_keeps_the_model_and_puts_the_picker_back(client, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    status, terms, picker, *_ = client.predict(FACES, "pggan-celebahq-1024", api_name="/load_model")  # typed by name
    assert time.perf_counter() - start < 10, "an offline load must fail at once, not after retries"
    assert status.startswith("⚠") and "feature-unlearning convert pggan-celebahq-1024" in status, status
    assert status.endswith(f"Still working with {MODEL}.")
    assert (picker.get("value") if isinstance(picker, dict) else picker) == MODEL  # the picker shows it again


# --------------------------------------------------------------------------------- pure helpers


def test_the_verdict_reads_removed_kept_cost_and_flags_a_growing_distance(app):
    report = {"n": 100, "share_before": 0.2, "share_after": 0.01, "removed": 0.95,
              "preservation": {"ssim": 0.93, "l1": 0.02}, "fd_before": 190.0, "fd_after": 288.0,
              "judge": {"name": "mnist-judge", "share_before": 0.19, "share_after": 0.03}}
    text = app.verdict(report)
    assert "from 20.0% to 1.0%" in text and "mnist-judge" in text and "19.0% → 3.0%" in text
    assert "stay 93% alike" in text and "⚠" in text and "190 → 288" in text and "+52%" in text
    assert "⚠" not in app.verdict({**report, "fd_after": 195.0})
    table = app.details_table(report)
    assert 'title="1 - after / before"' in table and ">95%<" in table and "fresh samples compared" in table
    # with the fair baseline (the original against the same feature-free digits) the cost is read against it
    fair = app.verdict({**report, "fd_before_same_reference": 280.0})
    assert "⚠" not in fair and "without the feature 280 → 288" in fair
    assert "⚠" in app.verdict({**report, "fd_before_same_reference": 230.0})


def test_reversed_ranges_and_junk_in_mark_numbers_are_refused(app):
    assert app._parse_indices("0, 3; 5-7") == [0, 3, 5, 6, 7]
    with pytest.raises(ValueError, match="runs backwards: write it as 2-5"):
        app._parse_indices("5-2")


def test_the_run_line_counts_who_goes_first(app):
    line = app.RunLine(concurrency=1)
    assert line.join("a") == (0, None)  # nobody ahead: starts now
    line.start("a")
    ahead, wait = line.join("b")
    assert ahead == 1 and wait is None  # no run has finished yet: no guess
    assert line.join("b") == (1, None)  # pressing Run again does not count twice
    line.finish(60.0)
    line.start("b")
    assert line.join("c") == (1, 60.0)
    assert line.join("d") == (2, 120.0)
    line.leave("c")  # c closed its page while waiting: it no longer counts for those behind it
    assert line.join("e") == (2, 120.0)


def test_a_closed_page_never_starts_its_run_and_stops_the_one_it_runs(app):
    import threading

    line = app.RunLine(concurrency=1)
    line.join("a")
    line.join("b")
    line.leave("b")  # b closed its page while waiting
    stop_a, stop_b = threading.Event(), threading.Event()
    assert line.start("a", stop_a) and not line.start("b", stop_b)  # b's turn comes: nothing to run
    assert line.running == 1 and not stop_b.is_set()
    line.leave("a")  # a closes its page while its run trains: the run is told to stop
    assert stop_a.is_set()
    line.finish(5.0, "a")
    assert line.running == 0
    line.join("b")  # b reloaded and pressed Run again: its page is open
    assert line.start("b", stop_b)


# ------------------------------------------------------------------------------ how it is built


def test_importing_the_app_builds_and_loads_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded at import")

    monkeypatch.setattr(fu.hub, "load_pretrained", refuse)
    sys.modules.pop("app", None)
    module = _import_app()
    import gradio as gr

    assert not [k for k, v in vars(module).items() if isinstance(v, (gr.Blocks, torch.nn.Module))]


def test_building_the_app_writes_no_file_next_to_it(app):
    stub = ROOT / "app.pyi"  # Gradio writes one for every gr.Component subclass a module defines
    stub.unlink(missing_ok=True)
    sys.modules.pop("app", None)
    _import_app().build_demo(default_model=MODEL, **TINY)
    assert not stub.exists()


def test_unlearning_defaults_come_from_unlearn_config(app, monkeypatch):
    from feature_unlearning.unlearn import UnlearnConfig

    class Tuned(UnlearnConfig):
        def __init__(self, **kw):
            super().__init__(**{"steps": 123, "lr": 0.0042, "alpha": 2.5, **kw})

    monkeypatch.setattr(app, "UnlearnConfig", Tuned)
    demo = app.build_demo(default_model=MODEL)
    values = {c.label: c.value for c in demo.blocks.values() if type(c).__name__ == "Number"}
    assert values["Steps"] == 123 and values["Learning rate"] == 0.0042
    assert values["Weight of forgetting vs keeping"] == 2.5


def test_default_model_is_the_bundled_dcgan(app, monkeypatch):
    monkeypatch.delenv("FEATURE_UNLEARNING_APP_MODEL", raising=False)
    demo = app.build_demo()
    picker = next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "model-pick")
    assert picker.value == "mnist-dcgan" and app.DEFAULT_MODEL == "mnist-dcgan"


def test_training_has_a_concurrency_limit(app):
    demo = app.build_demo(default_model=MODEL, train_concurrency=1)
    fn = next(f for f in demo.fns.values() if f.api_name == "unlearn")
    assert fn.concurrency_limit == 1 and fn.concurrency_id == "unlearn"


def test_on_a_cpu_the_handlers_run_on_one_compute_thread_when_it_is_free(app, monkeypatch):
    import threading

    assert app._compute_thread(app.Settings.read(train_concurrency=2)) is None  # each run needs its own thread
    monkeypatch.setattr(app, "default_device", lambda: "cuda")
    assert app._compute_thread(app.Settings.read()) is None
    monkeypatch.setattr(app, "default_device", lambda: "cpu")
    compute = app._compute_thread(app.Settings.read())
    try:
        here = threading.get_ident()
        handler = app._guard(1, compute)(lambda: threading.get_ident())
        assert handler() not in (None, here)

        def broken():
            raise ValueError("no model loaded")

        assert "no model loaded" in app._guard(1, compute)(broken)()  # still a message, not a crash
    finally:
        compute.close()


def test_gpu_time_grows_with_the_steps_and_stays_bounded(app):
    seconds = [app.gpu_seconds(s) for s in (1, 300, 1000, 3000, 100_000)]
    assert seconds == sorted(seconds) and seconds[0] >= 30 and seconds[-1] <= 600


def test_on_zero_gpu_training_runs_inside_spaces_gpu(monkeypatch, tmp_path, wait_for_training_to_end):
    calls = []

    def GPU(duration):  # the name of the real decorator
        def wrap(fn):
            def inner(*args, **kwargs):
                calls.append(duration(*args, **kwargs))
                # like ZeroGPU, which runs fn in another process: what goes in and comes out must pickle
                args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))
                for item in fn(*args, **kwargs):
                    yield pickle.loads(pickle.dumps(item))

            return inner

        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    sys.modules.pop("app", None)
    zero = _import_app()
    try:
        demo, address = _serve(zero)
        c = _client(address, tmp_path)
        c.predict("thick", api_name="/use_preset")
        c.predict(0, api_name="/find_direction")
        status, *_ = c.predict(4, 3e-4, 1.0, 0, api_name="/unlearn")
        assert status.startswith("✓ Unlearned in 4 steps"), status
        assert calls == [zero.gpu_seconds(4)]

        job = c.submit(5000, 3e-4, 1.0, 0, api_name="/unlearn")  # Cancel ends the run in the GPU process too
        _wait_for_progress(job)
        assert c.predict(api_name="/cancel").startswith("Stopping")
        status = job.result(timeout=120)[0]
        assert re.match(r"Stopped at step \d+ of 5000; on a ZeroGPU the partial model is not kept", status), status
        wait_for_training_to_end("the run was cancelled")
        demo.close()
    finally:
        sys.modules.pop("app", None)


def test_space_requirements_cover_the_package():
    """The Space installs requirements.txt before the repository is copied in, so it lists the
    package's own dependencies (app.py imports the package from the checkout)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    listed = {re.split(r"[<>=!~\[ ;]", ln, maxsplit=1)[0].lower().replace("_", "-") for ln in lines if ln}
    assert wanted <= listed, f"requirements.txt misses {sorted(wanted - listed)}"
    assert "gradio" in listed
