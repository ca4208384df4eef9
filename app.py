"""Feature unlearning, in the browser: pick a model and a feature, see its direction, unlearn it, compare.

    python app.py            # http://127.0.0.1:7860

The UI only: every computation is a call into ``feature_unlearning`` (mostly
:class:`feature_unlearning.session.Workspace`, one per browser session, kept in ``gr.State``, which owns
every change of the session's state). Laid out as hysts' Spaces are: one builder per step lays out its
components; the handlers are module-level functions, bound to their settings with ``functools.partial``
in :func:`bind`. Importing this file builds nothing; :func:`build_demo` makes the Blocks, ``__main__``
launches them.

Settings (environment variables, all optional):
    FEATURE_UNLEARNING_APP_MODEL      model loaded when the page opens (default: mnist-dcgan)
    FEATURE_UNLEARNING_APP_COLLECT_N  samples a preset labels to find a direction (default: 4000)
    FEATURE_UNLEARNING_APP_COMPARE_N  fresh latents behind the before/after numbers (default: 2000)
    FEATURE_UNLEARNING_APP_TRAIN_CONCURRENCY  unlearning runs at once, all sessions together (default: 1)
    GRADIO_SERVER_NAME, GRADIO_SERVER_PORT    where to listen (default: 127.0.0.1:7860)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
from types import SimpleNamespace

try:  # ZeroGPU on Hugging Face Spaces; elsewhere the app runs on whatever device torch finds
    import spaces
except ImportError:
    spaces = None

import gradio as gr

from feature_unlearning import hub, viz
from feature_unlearning.directions import ALPHAS
from feature_unlearning.oracles import PRESETS as ORACLE_PRESETS
from feature_unlearning.session import Workspace, unlearn_stream
from feature_unlearning.unlearn import UnlearnConfig
from feature_unlearning.utils import default_device

log = logging.getLogger("feature_unlearning.app")

DEFAULT_MODEL = "mnist-dcgan"
PRESETS = [(label, value) for value, label in ORACLE_PRESETS]  # (shown, value) as a Dropdown takes them
GRID_COLUMNS = 8
GRID_TILE = 112  # px: a 28 px digit drawn 4x
GRID_PADDING = 4  # px around each sample; a marked sample's padding turns amber
PAPER = "https://arxiv.org/abs/2303.05699"

INTRO = f"""
# Feature unlearning
Make a pretrained generator **stop drawing a visual feature** (thick strokes, a digit, whatever you mark)
while everything else it draws stays as it was, after Moon, Cho & Kim,
[*Feature Unlearning for Pre-trained GANs and VAEs*]({PAPER}) (AAAI 2024).
Work down the page: **1** pick a model, **2** show which samples have the feature, **3** find its direction in
latent space, **4** unlearn it, **5** compare and download the result.
"""

CSS = """
.fu-grid img { image-rendering: pixelated; cursor: pointer; }
.fu-pixels img { image-rendering: pixelated; }
.fu-status { min-height: 1.6em; }
"""


# ----------------------------------------------------------------------------------------- helpers


def _warn(message: str) -> str:
    """Show ``message`` as a toast and return it for the section's status line."""
    gr.Warning(message)
    return f"⚠ {message}"


def _guard(n_outputs: int):
    """Turn errors into a visible message: the status (first output) says what went wrong; the other
    outputs keep their values. Expected mistakes raise ValueError with a readable text."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ValueError as err:
                message = str(err)
            except Exception as err:  # never crash the page; the log has the traceback
                log.exception("%s failed", getattr(fn, "__name__", fn))
                message = f"something went wrong ({type(err).__name__}: {err})"
            if n_outputs == 1:
                return _warn(message)
            return (_warn(message),) + tuple(gr.skip() for _ in range(n_outputs - 1))

        return inner

    return wrap


def _is_bundled(name: str) -> bool:
    entry = hub.REGISTRY[name]
    return entry.bundled and entry.bundled_path.is_dir()


def _close(ws: Workspace | None) -> None:
    if ws is not None:
        ws.close()


def _need(ws: Workspace | None) -> Workspace:
    if ws is None:
        raise ValueError("no model loaded yet: pick one in step 1 and press Load")
    return ws


def _grid(ws: Workspace, page: int):
    images, marked = ws.page(page)
    images, scale = viz.fit(images, GRID_TILE)
    return viz.image_grid(images, nrow=GRID_COLUMNS, scale=scale, padding=GRID_PADDING, highlight=marked)


def _tile(ws: Workspace) -> int:
    """Height in px of one sample in the grid (what a click position is divided by)."""
    images, scale = viz.fit(ws.images[:1], GRID_TILE)
    return images.shape[-1] * scale


def _show(images, size: int = 84, **grid_kwargs):
    """A grid of ``images`` with each sample about ``size`` px tall."""
    images, scale = viz.fit(images, size)
    return viz.image_grid(images, scale=scale, padding=GRID_PADDING, **grid_kwargs)


def _counts(ws: Workspace, page: int) -> str:
    n_pos, n_neg = ws.counts()
    how = (
        f"labelled by the preset **{_preset_label(ws.preset)}** (clicking switches to your own marks)"
        if ws.preset
        else "marked by hand"
    )
    return (
        f"**{n_pos} with the feature** · {n_neg} without · {how}  \n"
        f"page {page + 1} of {ws.n_pages} ({ws.n_samples} samples drawn)"
    )


def _preset_label(value: str | None) -> str:
    return next((label for label, v in PRESETS if v == value), str(value))


def _marks_text(ws: Workspace) -> str:
    return ", ".join(str(i) for i in sorted(ws.marked))


def _feature_view(ws: Workspace, page: int):
    """(grid, counts, marks text) after the marks or the page changed."""
    return _grid(ws, page), _counts(ws, page), _marks_text(ws)


def _parse_indices(text: str) -> list[int]:
    out = []
    for part in (text or "").replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            if not (lo.strip().isdigit() and hi.strip().isdigit()):
                raise ValueError(f"can't read {part!r}: write sample numbers like 0, 3, 5-9")
            lo, hi = int(lo), int(hi)
            if hi - lo > 100_000:
                raise ValueError(f"the range {part!r} is longer than any page of samples")
            out.extend(range(lo, hi + 1))
        elif part.isdigit():
            out.append(int(part))
        else:
            raise ValueError(f"can't read {part!r}: write sample numbers like 0, 3, 5-9")
    return out


def _strip(images) -> object:
    return _show(images, 112, nrow=len(images))


def _picture(label: str, elem_id: str, *, elem_classes: str = "fu-pixels", **kwargs) -> gr.Image:
    """An output-only PNG picture without Gradio's download/fullscreen buttons (pixels drawn as pixels)."""
    return gr.Image(label=label, show_label=False, format="png", interactive=False, buttons=[], elem_id=elem_id,
                    elem_classes=elem_classes, **kwargs)


def _bar(step: int, steps: int) -> str:
    """A progress bar (inline styles: it needs no CSS of its own)."""
    share = 100 * min(max(step / max(steps, 1), 0), 1)
    return (
        f'<div role="progressbar" aria-valuenow="{step}" aria-valuemax="{steps}" title="{step} of {steps} steps" '
        'style="height:10px;border-radius:5px;background:var(--neutral-200,#e5e7eb);overflow:hidden">'
        f'<div style="width:{share:.1f}%;height:100%;background:var(--color-accent,#f97316)"></div></div>'
    )


def _live_caption(alpha: float) -> str:
    return f"**The traversal's samples at a = {float(alpha):+.2f}**".replace("+0.00", "0")


def _feature_summary(ws: Workspace) -> str:
    s = ws.feature.stats
    source = (
        f"the preset **{_preset_label(ws.preset)}** labelled {s['n_samples']} fresh samples"
        if ws.preset
        else f"your marks on {s['n_samples']} samples (a probe learnt from them labels new samples while unlearning)"
    )
    return (
        f"✓ Direction found from {source}: **{s['n_positive']} with the feature** "
        f"({100 * s['positive_share']:.1f}%), threshold t = {s['threshold']:.2f}. "
        f"The line z · d ≥ t alone catches {100 * s['linear_rule_recall']:.0f}% of them "
        f"(and {100 * s['linear_rule_false_positive_rate']:.0f}% of the others)."
    )


METRIC_ROWS = [
    ("share_before", "samples with the feature, original", "{:.1%}"),
    ("share_after", "samples with the feature, unlearned", "{:.1%}"),
    ("removed", "share of the feature removed", "{:.1%}"),
    ("fd_before", "Fréchet distance to real digits, original (lower = more realistic)", "{:.1f}"),
    ("fd_after", "Fréchet distance to real digits without the feature, unlearned", "{:.1f}"),
    ("preservation.ssim", "SSIM to the original, samples without the feature (1 = unchanged)", "{:.3f}"),
    ("preservation.l1", "mean |difference| to the original, samples without the feature", "{:.4f}"),
    ("preservation_clear.ssim", "SSIM to the original, samples clearly without the feature", "{:.3f}"),
    ("preservation_clear.l1", "mean |difference| to the original, samples clearly without the feature", "{:.4f}"),
]


def _metrics_table(report: dict) -> list[list[str]]:
    rows = []
    for key, label, fmt in METRIC_ROWS:
        value = report
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            rows.append([label, fmt.format(value)])
    rows.append(["latents compared", str(report["n"])])
    return rows


def gpu_seconds(steps: int, batch_size: int = 64) -> int:
    """ZeroGPU seconds to ask for an unlearning run of ``steps``: 20 s to start plus 0.1 s a step, within
    [30, 600]. A generous guess, not yet measured on a ZeroGPU (a shorter request queues sooner)."""
    return int(min(600, max(30, 20 + 0.1 * steps * max(1, batch_size / 64))))


# --------------------------------------------------------------------------------- the training run


def _run_unlearning(feature, model, config, *, preview_z):
    """The GPU part: stream unlearning progress, on the GPU when this process has one. No session state
    goes in (ZeroGPU runs this in another process, so the Workspace's stop event can't reach it):
    :meth:`Workspace.start_run` closes this stream on Cancel instead."""
    config = dataclasses.replace(config, device=default_device())
    yield from unlearn_stream(feature, model, config, preview_z=preview_z)


def _gpu_duration(feature, model, config, *, preview_z) -> int:
    return gpu_seconds(config.steps, config.batch_size)


if spaces is not None:  # decorating runs nothing; ZeroGPU needs the decorated function at startup
    _run_unlearning_gpu = spaces.GPU(duration=_gpu_duration)(_run_unlearning)
else:
    _run_unlearning_gpu = None


# ------------------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the app is started with (arguments of :func:`build_demo`, else the environment variables)."""

    default_model: str
    page_size: int
    collect_n: int
    compare_n: int
    train_concurrency: int

    @classmethod
    def read(cls, *, default_model=None, page_size=32, collect_n=None, compare_n=None, train_concurrency=None):
        env = os.environ.get
        return cls(
            default_model=default_model or env("FEATURE_UNLEARNING_APP_MODEL") or DEFAULT_MODEL,
            page_size=page_size,
            collect_n=int(collect_n or env("FEATURE_UNLEARNING_APP_COLLECT_N") or 4000),
            compare_n=int(compare_n or env("FEATURE_UNLEARNING_APP_COMPARE_N") or 2000),
            train_concurrency=int(train_concurrency or env("FEATURE_UNLEARNING_APP_TRAIN_CONCURRENCY") or 1),
        )


# --------------------------------------------------------------------------- the layout, step by step


def model_step(ui: SimpleNamespace, settings: Settings) -> None:
    gr.Markdown("## 1 · Model")
    known = hub.list_models("generator")
    with gr.Row(equal_height=True):
        ui.model_pick = gr.Dropdown(
            choices=[(name if _is_bundled(name) else f"{name} (from the Hub)", name) for name in known],
            value=settings.default_model if settings.default_model in known else None,
            label="Known model",
            scale=2,
        )
        ui.model_path = gr.Textbox(
            value="" if settings.default_model in known else settings.default_model,
            label="…or a Hub repo id / local folder (used when filled in)",
            placeholder="org/name  or  /path/to/folder",
            scale=3,
        )
        ui.load_btn = gr.Button("Load", variant="primary", scale=1)
    ui.model_status = gr.Markdown(elem_classes="fu-status", elem_id="model-status")


def feature_step(ui: SimpleNamespace) -> None:
    gr.Markdown(
        "## 2 · Feature\nClick the samples that show the feature you want gone (click again to unmark), "
        "or let a preset label them. Marked samples get an amber frame."
    )
    with gr.Row():
        with gr.Column(scale=3):
            ui.grid = _picture("Samples: click to mark / unmark", "sample-grid", elem_classes="fu-grid")
        with gr.Column(scale=1, min_width=260):
            ui.counts = gr.Markdown(elem_id="counts")
            with gr.Row():
                ui.prev_btn = gr.Button("◀ Page", size="sm", min_width=60)
                ui.next_btn = gr.Button("Page ▶", size="sm", min_width=60)
            ui.more_btn = gr.Button("More samples")
            ui.clear_btn = gr.Button("Clear marks", size="sm")
            ui.preset = gr.Dropdown(choices=PRESETS, value="thick", label="Preset feature")
            ui.preset_btn = gr.Button("Label with the preset")
            with gr.Accordion("Mark by number", open=False):
                ui.marks_box = gr.Textbox(
                    label="Marked samples (0 = top left, numbered across pages; e.g. 0, 3, 5-9)", elem_id="marks"
                )
                ui.marks_btn = gr.Button("Set marks", size="sm")
    ui.feature_status = gr.Markdown(elem_classes="fu-status", elem_id="feature-status")


def direction_step(ui: SimpleNamespace) -> None:
    gr.Markdown(
        "## 3 · Direction\nThe feature's direction d in latent space: rows are samples moved along it by "
        "a (0 = the sample itself); the histogram shows where samples with and without the feature fall."
    )
    ui.direction_btn = gr.Button("Find the direction", variant="primary")
    ui.direction_status = gr.Markdown(elem_classes="fu-status", elem_id="direction-status")
    with gr.Row():
        with gr.Column():
            gr.Markdown(f"**Traversal** z + a·d, a from {ALPHAS[0]:g} to +{ALPHAS[-1]:g} (framed: a = 0)")
            ui.traversal = _picture("Traversal", "traversal")
        with gr.Column():
            gr.Markdown("**Projections** z · d of the labelled samples, and the threshold t")
            ui.histogram = gr.Plot(label="Projections", show_label=False, format="png", elem_id="histogram")
    with gr.Row(equal_height=True):
        ui.alpha_slider = gr.Slider(
            ALPHAS[0], ALPHAS[-1], value=0, step=0.25, label="Move along the direction: a",
            info="updates when you let go", scale=1, elem_id="alpha",
        )
        with gr.Column(scale=3):
            ui.live_caption = gr.Markdown(_live_caption(0))
            ui.live = _picture("At a", "live", height=140)


def unlearn_step(ui: SimpleNamespace, defaults: UnlearnConfig) -> None:
    gr.Markdown(
        "## 4 · Unlearn\nFine-tunes a copy of the model: samples with the feature learn to look like their "
        "feature-free versions, all others stay as they were. "
        + ("Runs on a ZeroGPU." if _run_unlearning_gpu is not None else "Runs on the GPU when there is one, else on the CPU.")
    )
    with gr.Row():
        ui.steps_in = gr.Number(value=defaults.steps, precision=0, label="Steps")
        ui.lr_in = gr.Number(value=defaults.lr, label="Learning rate")
        ui.alpha_in = gr.Number(value=defaults.alpha, label="alpha (weight of L_unlearn + L_percep vs L_recon)")
    with gr.Row():
        ui.run_btn = gr.Button("Run unlearning", variant="primary")
        ui.cancel_btn = gr.Button("Cancel", variant="stop", interactive=False)
    ui.run_status = gr.Markdown(elem_classes="fu-status", elem_id="run-status")
    ui.run_bar = gr.HTML(_bar(0, 1), elem_id="run-bar")
    with gr.Row():
        with gr.Column():
            gr.Markdown("**Losses** while training")
            ui.loss_plot = gr.Plot(label="Losses", show_label=False, format="png", elem_id="losses")
        with gr.Column():
            gr.Markdown("**Preview**: the same latents while training (framed: had the feature)")
            ui.preview = _picture("Preview", "preview")


def compare_step(ui: SimpleNamespace) -> None:
    gr.Markdown("## 5 · Compare and download")
    with gr.Row():
        ui.compare_btn = gr.Button("Compare original and unlearned", variant="primary")
        ui.export_btn = gr.Button("Export the unlearned model (.zip)")
    ui.compare_status = gr.Markdown(elem_classes="fu-status", elem_id="compare-status")
    gr.Markdown(
        "**The same latents**: original | unlearned | difference (red: ink removed, blue: ink added, "
        "brighter: a bigger change; framed: had the feature)"
    )
    ui.comparison = _picture("Original | unlearned | difference", "comparison")
    with gr.Row():
        ui.metrics = gr.Dataframe(
            headers=["measure", "value"], label="Before / after", interactive=False, wrap=True, scale=2,
            elem_id="metrics",
        )
        with gr.Column(scale=1):
            ui.download = gr.File(label="Unlearned model: config.json, model.safetensors, README.md")
            ui.export_status = gr.Markdown(elem_classes="fu-status", elem_id="export-status")
    with gr.Accordion("Push to the Hugging Face Hub (optional)", open=False):
        with gr.Row():
            ui.repo_in = gr.Textbox(label="Repo id", placeholder="your-name/mnist-dcgan-without-thick")
            ui.token_in = gr.Textbox(label="Token with write access", type="password")
            ui.private_in = gr.Checkbox(label="Private", value=True)
        ui.push_btn = gr.Button("Push")
        ui.push_status = gr.Markdown(elem_classes="fu-status", elem_id="push-status")


# ------------------------------------------------------------------------------------- handlers
# Each takes the session's Workspace (and the page on screen) and returns what its outputs show.
# Statuses come first: @_guard turns a ValueError into a warning there and leaves the other outputs alone.

N_RESET = 9  # the pictures and plots of steps 3-5 that belong to one model (see bind: reset_outputs)


def _reset() -> tuple:
    """Empty pictures for steps 3-5 (the progress bar at 0) after a new model is loaded."""
    return (None, None, None, _bar(0, 1), None, None, None, None, None)


def load(choice, path, old, *, page_size: int):
    """(model status, workspace, page, five empty statuses, grid, counts, marks, reset pictures)."""
    name = (path or "").strip() or (choice or "").strip()
    try:
        ws = Workspace.open(name, page_size=page_size)
    except ValueError as err:
        entry = hub.REGISTRY.get(name)
        message = str(err).rstrip(".") + "."
        if entry is not None and not entry.bundled:
            message += f" About {name}: {entry.description}."
        if old is not None:
            message += f" Still working with {old.model_name}."
        raise ValueError(message) from None
    _close(old)
    m = ws.model
    info = hub.REGISTRY[name].description if name in hub.REGISTRY else type(m).__name__
    status = f"✓ Loaded **{name}**: {info}; latent dimension {m.latent_dim}, images {'×'.join(map(str, m.image_shape))}."
    return (status, ws, 0, "", "", "", "", "", *_feature_view(ws, 0), *_reset())


def click(ws, page, evt: gr.SelectData):
    ws = _need(ws)
    x, y = evt.index
    images, _ = ws.page(page)
    i = viz.grid_index(x, y, n=len(images), nrow=GRID_COLUMNS, tile=_tile(ws), padding=GRID_PADDING)
    if i is None:
        return (gr.skip(),) * 5
    marked = ws.toggle(page * ws.page_size + i)
    return (f"{'Marked' if marked else 'Unmarked'} sample {page * ws.page_size + i}.", *_feature_view(ws, page), page)


def set_marks(ws, page, text):
    ws = _need(ws)
    ws.set_marked(_parse_indices(text))
    return (f"{len(ws.marked)} samples marked.", *_feature_view(ws, page), page)


def turn_page(ws, page, *, delta: int):
    ws = _need(ws)
    page = min(max(page + delta, 0), ws.n_pages - 1)
    return ("", *_feature_view(ws, page), page)


def more(ws):
    ws = _need(ws)
    page = ws.add_page()
    return (f"Drew {ws.page_size} more samples (page {page + 1}).", *_feature_view(ws, page), page)


def clear(ws, page):
    ws = _need(ws)
    ws.clear()
    return ("Marks cleared.", *_feature_view(ws, page), page)


def use_preset(ws, page, value, *, collect_n: int):
    ws = _need(ws)
    if not value:
        raise ValueError("choose a preset feature first")
    n = ws.use_preset(value)
    status = (
        f"The preset **{_preset_label(value)}** finds the feature in {n} of the {ws.n_samples} samples "
        f"shown; finding the direction will label {collect_n} fresh samples with it."
    )
    return (status, *_feature_view(ws, page), page)


def find_direction(ws, alpha, *, collect_n: int):
    ws = _need(ws)
    feature = ws.find_feature(n=collect_n)
    strips, scale = viz.fit(ws.traversal(ALPHAS), 84)
    return (
        _feature_summary(ws),
        viz.traversal_grid(strips, ALPHAS, scale=scale),
        viz.projection_histogram(*feature.projections(), feature.threshold),
        _live_caption(alpha),
        _strip(ws.at_alpha(alpha)),
        _show(ws.preview(), nrow=8, highlight=ws.preview_marked),
    )


def move(ws, alpha):
    ws = _need(ws)
    return gr.skip(), _live_caption(alpha), _strip(ws.at_alpha(alpha))


def _run_config(ws, steps, lr, alpha) -> UnlearnConfig:
    ws = _need(ws)
    if ws.feature is None:
        raise ValueError("find the feature's direction first (step 3)")
    if steps is None or lr is None or alpha is None:
        raise ValueError("fill in steps, learning rate and alpha")
    if float(steps) != int(steps):
        raise ValueError(f"steps must be a whole number, got {steps}")
    return ws.config(steps=int(steps), lr=float(lr), alpha=float(alpha))


def run(ws, steps, lr, alpha):
    """Stream: (status, progress bar, loss plot, preview, run button, cancel button)."""
    idle = (gr.update(interactive=True), gr.update(interactive=False))
    try:
        config = _run_config(ws, steps, lr, alpha)
    except ValueError as err:
        yield (_warn(str(err)), gr.skip(), gr.skip(), gr.skip(), *idle)
        return
    yield (f"Starting {config.steps} steps…", _bar(0, config.steps), viz.loss_curves({}, total_steps=config.steps),
           gr.skip(), gr.update(interactive=False), gr.update(interactive=True))
    try:
        for p in ws.start_run(config, runner=_run_unlearning_gpu):
            bar, plot = _bar(p.step, p.steps), viz.loss_curves(p.curves, total_steps=p.steps)
            picture = _show(p.preview, nrow=8, highlight=ws.preview_marked)
            if p.abandoned:
                yield (f"Stopped at step {p.step} of {p.steps}; on a ZeroGPU the partial model is not kept.",
                       bar, plot, picture, *idle)
            elif not p.done:
                left = p.elapsed / max(p.step, 1) * (p.steps - p.step)
                yield (f"Step {p.step} of {p.steps} · {p.elapsed:.0f} s · about {left:.0f} s left", bar, plot, picture,
                       gr.skip(), gr.skip())
            else:
                how = f"Stopped at step {p.step} of {p.steps}" if p.stopped_early else f"✓ Unlearned in {p.steps} steps"
                yield (f"{how} ({p.history.seconds:.1f} s). Compare the result below.", bar, plot, picture, *idle)
    except Exception as err:
        log.exception("unlearning failed")
        message = str(err) if isinstance(err, ValueError) else f"unlearning failed ({type(err).__name__}: {err})"
        yield (_warn(message), gr.skip(), gr.skip(), gr.skip(), *idle)


def cancel(ws):
    if ws is None:
        return _warn("nothing to cancel")
    ws.cancel()  # the run ends at its next logged step (and keeps the model so far, off ZeroGPU)
    return "Stopping at the next logged step…"


def compare(ws, *, compare_n: int):
    ws = _need(ws)
    report = ws.compare(n=compare_n)
    (before, scale), (after, _) = viz.fit(ws.preview(), 84), viz.fit(ws.preview(ws.result.unlearned), 84)
    picture = viz.side_by_side(before, after, nrow=4, scale=scale, padding=3, highlight=ws.preview_marked)
    status = (
        f"✓ On {report['n']} fresh samples the feature went from {report['share_before']:.1%} to "
        f"{report['share_after']:.1%}."
    )
    return status, picture, _metrics_table(report)


def export(ws):
    ws = _need(ws)
    path = ws.export()
    note = "" if ws.result.comparison else " (compare first to put the before/after numbers in its card)"
    return f"✓ Packed {path.name}{note}.", str(path)


def push(ws, repo_id, token, private):
    ws = _need(ws)
    try:
        url = ws.push(repo_id, token, private=bool(private))
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001 - offline, bad token, no rights: say so, no traceback
        raise ValueError(
            f"couldn't push to the Hub ({type(err).__name__}: {err}). Are you online, and does the "
            "token have write access? Export the zip instead to keep the model."
        ) from None
    return f"✓ Pushed to {url}"


# ------------------------------------------------------------------------------------- binding


def bind(demo: gr.Blocks, ui: SimpleNamespace, settings: Settings) -> None:
    """Connect the components to the handlers above."""
    ws, page = ui.ws, ui.page
    marks_out = [ui.feature_status, ui.grid, ui.counts, ui.marks_box, page]
    reset_outputs = [ui.traversal, ui.histogram, ui.live, ui.run_bar, ui.loss_plot, ui.preview, ui.comparison,
                     ui.metrics, ui.download]
    assert len(reset_outputs) == N_RESET
    # the model, the session, the page, then every status and picture that belonged to the old model
    load_outputs = [ui.model_status, ws, page, ui.feature_status, ui.direction_status, ui.run_status,
                    ui.compare_status, ui.export_status, ui.grid, ui.counts, ui.marks_box, *reset_outputs]
    load_fn = _guard(len(load_outputs))(functools.partial(load, page_size=settings.page_size))
    load_in = [ui.model_pick, ui.model_path, ws]
    ui.load_btn.click(load_fn, load_in, load_outputs, api_name="load_model")
    ui.model_path.submit(load_fn, load_in, load_outputs, api_visibility="private")
    demo.load(load_fn, load_in, load_outputs, api_visibility="private")

    ui.grid.select(
        _guard(5)(click), [ws, page], marks_out, api_visibility="private", show_progress="hidden",
        trigger_mode="multiple",  # a quick second click is queued, not dropped ...
        concurrency_limit=1, concurrency_id="marks",  # ... and handled after the first
    )
    ui.marks_btn.click(_guard(5)(set_marks), [ws, page, ui.marks_box], marks_out, api_name="set_marks")
    ui.marks_box.submit(_guard(5)(set_marks), [ws, page, ui.marks_box], marks_out, api_visibility="private")
    for button, delta in ((ui.prev_btn, -1), (ui.next_btn, 1)):
        button.click(_guard(5)(functools.partial(turn_page, delta=delta)), [ws, page], marks_out,
                     api_visibility="private")
    ui.more_btn.click(_guard(5)(more), [ws], marks_out, api_name="more_samples")
    ui.clear_btn.click(_guard(5)(clear), [ws, page], marks_out, api_name="clear_marks")
    ui.preset_btn.click(_guard(5)(functools.partial(use_preset, collect_n=settings.collect_n)),
                        [ws, page, ui.preset], marks_out, api_name="use_preset")

    ui.direction_btn.click(
        _guard(6)(functools.partial(find_direction, collect_n=settings.collect_n)),
        [ws, ui.alpha_slider],
        [ui.direction_status, ui.traversal, ui.histogram, ui.live_caption, ui.live, ui.preview],
        api_name="find_direction",
    )
    ui.alpha_slider.release(
        _guard(3)(move), [ws, ui.alpha_slider], [ui.direction_status, ui.live_caption, ui.live], api_name="traverse",
        show_progress="hidden", trigger_mode="always_last",  # after a quick second drag, show where it ended
    )

    ui.run_btn.click(
        run, [ws, ui.steps_in, ui.lr_in, ui.alpha_in],
        [ui.run_status, ui.run_bar, ui.loss_plot, ui.preview, ui.run_btn, ui.cancel_btn],
        api_name="unlearn", concurrency_limit=settings.train_concurrency, concurrency_id="unlearn",
        show_progress="minimal", show_progress_on=[ui.run_status],
    )
    ui.cancel_btn.click(cancel, [ws], [ui.run_status], api_name="cancel", queue=False)

    ui.compare_btn.click(
        _guard(3)(functools.partial(compare, compare_n=settings.compare_n)), [ws],
        [ui.compare_status, ui.comparison, ui.metrics], api_name="compare", concurrency_limit=2,
        concurrency_id="compare",
    )
    ui.export_btn.click(_guard(2)(export), [ws], [ui.export_status, ui.download], api_name="export")
    ui.push_btn.click(_guard(1)(push), [ws, ui.repo_in, ui.token_in, ui.private_in], [ui.push_status], api_name="push")


# ------------------------------------------------------------------------------------------- the UI


def build_demo(
    *,
    default_model: str | None = None,
    page_size: int = 32,
    collect_n: int | None = None,
    compare_n: int | None = None,
    train_concurrency: int | None = None,
) -> gr.Blocks:
    """The Blocks of the app. Arguments override the environment variables in the module docstring;
    tests pass tiny values (a small ``collect_n`` and ``compare_n``)."""
    settings = Settings.read(default_model=default_model, page_size=page_size, collect_n=collect_n,
                             compare_n=compare_n, train_concurrency=train_concurrency)
    ui = SimpleNamespace()
    with gr.Blocks(title="Feature unlearning", analytics_enabled=False, delete_cache=(3600, 7200)) as demo:
        ui.ws = gr.State(None, delete_callback=_close)  # this session's Workspace; its files go when it ends
        ui.page = gr.State(0)  # the page of samples on screen
        gr.Markdown(INTRO)
        model_step(ui, settings)
        feature_step(ui)
        direction_step(ui)
        unlearn_step(ui, UnlearnConfig())  # read now, not at import: the library's defaults may change
        compare_step(ui)
        bind(demo, ui, settings)
    demo.queue(default_concurrency_limit=4)
    return demo


def launch(demo: gr.Blocks, **overrides):
    """``demo.launch`` with the app's settings: local only, no share link, its CSS (``overrides`` win)."""
    options = {
        "share": False,
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "css": CSS,
        "footer_links": ["gradio", "settings"],
    }
    options.update(overrides)
    return demo.launch(**options)


def main() -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    launch(build_demo())


if __name__ == "__main__":
    main()
