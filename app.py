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
import html
import importlib.util
import logging
import math
import os
import threading
import time
from types import SimpleNamespace

try:  # ZeroGPU on Hugging Face Spaces; elsewhere the app runs on whatever device torch finds
    import spaces
except ImportError:
    spaces = None

import gradio as gr
import numpy as np

from feature_unlearning import examples, hub, viz
from feature_unlearning.directions import ALPHAS
from feature_unlearning.oracles import PRESETS as ORACLE_PRESETS
from feature_unlearning.session import (
    ALPHA_RANGE,
    LOSS_KEYS,
    LR_RANGE,
    STEPS_RANGE,
    Workspace,
    unlearn_stream,
)
from feature_unlearning.unlearn import UnlearnConfig, UnlearningDiverged
from feature_unlearning.utils import ComputeThread, default_device

log = logging.getLogger("feature_unlearning.app")

DEFAULT_MODEL = "mnist-dcgan"
PRESETS = [(label, value) for value, label in ORACLE_PRESETS]  # (shown, value) as a Dropdown takes them
BY_HAND = ("none: I mark the samples by hand", "")
GRID_COLUMNS = 8
GRID_TILE = 112  # px: a 28 px digit drawn 4x, a 64 px face 2x (128 px: glasses are easy to judge)
GRID_PADDING = 4  # px around each sample; a marked sample's padding turns amber
UPDATE_EVERY_S = 1.5  # while unlearning, at most one progress update (bar, curves, preview) this often
PAPER = "https://arxiv.org/abs/2303.05699"

INTRO = f"""
# Feature unlearning
Make a pretrained generator **stop drawing a visual feature** (thick strokes, a digit, whatever you mark)
while everything else it draws stays as it was, after Moon, Cho & Kim,
[*Feature Unlearning for Pre-trained GANs and VAEs*]({PAPER}) (AAAI 2024).
Work down the page: **1** pick a model, **2** show which samples have the feature, **3** find its direction in
latent space, **4** unlearn it, **5** compare and download the result. Or first open a finished example: every
step then shows what a default run made, at once.
"""

CSS = """
.fu-grid img { image-rendering: pixelated; cursor: pointer; }
.fu-pixels img { image-rendering: pixelated; }
.fu-status { min-height: 1.6em; }
/* one toast at a time: a new message replaces the last instead of piling up over the controls */
.toast-wrap > :not(:last-child) { display: none !important; }
.fu-table { width: 100%; border-collapse: collapse; table-layout: fixed; }
.fu-table td { padding: 4px 6px; border-bottom: 1px solid var(--border-color-primary, #e5e7eb);
               overflow-wrap: anywhere; vertical-align: top; }
.fu-table td:last-child { width: 34%; text-align: right; font-variant-numeric: tabular-nums; }
.fu-table abbr { text-decoration: underline dotted; cursor: help; }
"""

# Scrolls the run's status into view when Run is pressed (the preview is then on screen, not below the fold).
SCROLL_TO_RUN = "() => { document.getElementById('run-status')?.scrollIntoView({behavior: 'smooth', block: 'start'}); }"


# ----------------------------------------------------------------------------------------- helpers


def _warn(message: str) -> str:
    """Show ``message`` as a toast and return it for the section's status line."""
    gr.Warning(message)
    return f"⚠ {message}"


def _guard(n_outputs: int, compute: ComputeThread | None = None):
    """Turn errors into a visible message: the status (first output) says what went wrong; the other
    outputs keep their values. Expected mistakes raise ValueError with a readable text. With ``compute``, the
    handler runs on that thread when it is free (see :class:`~feature_unlearning.utils.ComputeThread`)."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return compute.run(fn, *args, **kwargs) if compute is not None else fn(*args, **kwargs)
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


def _package_installed(source: hub.Source) -> bool:
    module = (source.package_file or "").split("/", 1)[0]
    return bool(module) and importlib.util.find_spec(module) is not None


def model_choices() -> tuple[list[tuple[str, str]], list[str]]:
    """What the picker offers: ``(label, name)`` for every generator that loads here without a network
    (bundled, installed from a pip package, or converted into the cache before), and one Markdown line
    for each of the others saying what it needs."""
    offered, others = [], []
    for name in hub.list_models("generator"):
        entry = hub.REGISTRY[name]
        where, source = entry.where(), entry.source
        if where == "bundled":
            offered.append((f"{name} · bundled", name))
        elif source is not None and source.package and (where == "converted (cached)" or _package_installed(source)):
            offered.append((f"{name} · installed from the pip package {source.package}", name))
        elif where == "converted (cached)":
            offered.append((f"{name} · converted copy in your cache", name))
        elif source is not None and source.package:
            others.append(f"- **{name}**: needs `pip install {source.package}`. {entry.description}.")
        else:
            size = f", downloads {source.size}" if source is not None and source.size else ""
            others.append(f"- **{name}** (from the Hub): needs a network once: `feature-unlearning convert {name}`"
                          f"{size}. {entry.description}.")
    return offered, others


def example_choices() -> list[tuple[str, str]]:
    """(shown, name) of every finished example; one not made here yet says so (opening it says how)."""
    out = []
    for ex, state in examples.status():
        note = {"ready": "", "missing": " (not made here yet)", "stale": " (made from other weights: remake it)",
                "unavailable": f" (needs {ex.model})"}[state]
        out.append((f"{ex.title} · {ex.model}{note}", ex.name))
    return out


def _terms(name: str) -> str:
    """The licence / data terms of a registry model when they restrict its use (faces), else ''."""
    entry = hub.REGISTRY.get(name)
    if entry is None or entry.terms == hub.MNIST_TERMS:
        return ""
    return f"**Terms of use of {name}:** {entry.terms}"


def _is_digits(ws: Workspace) -> bool:
    return tuple(ws.model.image_shape) == (1, 28, 28)


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
            if hi < lo:
                raise ValueError(f"the range {part!r} runs backwards: write it as {hi}-{lo}")
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


def _titled(rows: list[tuple[str, object]], size: int = 112, **grid_kwargs) -> np.ndarray:
    """Grids of images ``(N, C, H, W)`` about ``size`` px tall, each under its title, stacked top to bottom."""
    panels = [viz.add_title(_show(images, size, **grid_kwargs), title) for title, images in rows]
    width = max(p.shape[1] for p in panels)
    panels = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
    return np.concatenate(panels, axis=0)


def clamped_slider(minimum: float, maximum: float, **kwargs) -> gr.Slider:
    """A slider that moves a typed or sent value outside [minimum, maximum] to the nearest end instead of
    refusing it with "Value 99 is greater than maximum". The clamp is set on this one instance: a subclass of
    gr.Slider would make Gradio write a type stub (app.pyi) next to this file on import."""
    slider = gr.Slider(minimum, maximum, **kwargs)
    plain = slider.preprocess

    def preprocess(payload):
        try:
            payload = min(max(float(payload), minimum), maximum)
        except (TypeError, ValueError):
            payload = slider.value
        return plain(payload)

    slider.preprocess = preprocess
    return slider


def _picture(label: str, elem_id: str, *, elem_classes: str = "fu-pixels", show_label: bool = False,
             **kwargs) -> gr.Image:
    """An output-only PNG picture without Gradio's download/fullscreen buttons (pixels drawn as pixels)."""
    return gr.Image(label=label, show_label=show_label, format="png", interactive=False, buttons=[], elem_id=elem_id,
                    elem_classes=elem_classes, **kwargs)


def _bar(step: int, steps: int) -> str:
    """A progress bar (inline styles: it needs no CSS of its own)."""
    share = 100 * min(max(step / max(steps, 1), 0), 1)
    return (
        f'<div role="progressbar" aria-valuenow="{step}" aria-valuemax="{steps}" title="{step} of {steps} steps" '
        'style="height:10px;border-radius:5px;background:var(--neutral-200,#e5e7eb);overflow:hidden">'
        f'<div style="width:{share:.1f}%;height:100%;background:var(--color-accent,#f97316)"></div></div>'
    )


def _clamp_alpha(alpha) -> float:
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(alpha) else min(max(alpha, ALPHAS[0]), ALPHAS[-1])


def _live_caption(alpha: float) -> str:
    return f"**The traversal's samples moved by {_clamp_alpha(alpha):+.2f} along the direction**".replace("+0.00", "0")


def _live(ws: Workspace, alpha: float):
    """The traversal latents at ``alpha``: the original's, and the unlearned model's under it after a run."""
    alpha = _clamp_alpha(alpha)
    if ws.result is None:
        return _strip(ws.at_alpha(alpha))
    return _titled([("original", ws.at_alpha(alpha)), ("unlearned", ws.at_alpha(alpha, model=ws.result.unlearned))],
                   nrow=6)


#: Below this many marks a probe learnt from them gets a tip to mark more (the face benchmark's hat probe: AUC 0.77
#: from 10 marks, 0.91 from 23, 0.90 from 36; glasses 0.92 from 11 already).
FEW_MARKS = 20


def _feature_summary(ws: Workspace) -> str:
    s = ws.feature.stats
    if ws.preset:
        source = f"the preset **{_preset_label(ws.preset)}** labelled {s['n_samples']} fresh samples"
    elif "n_clicked" in s:
        source = (f"your marks on {s['n_clicked']} samples: a probe learnt from them labelled {s['n_samples']} fresh "
                  "samples (and labels new ones while unlearning)")
    elif ws.feature.image_oracle:
        source = f"your marks on {s['n_samples']} samples (a probe learnt from them labels new samples while unlearning)"
    else:
        source = f"your marks on {s['n_samples']} samples"
    tip = ""
    if not ws.preset and ws.feature.image_oracle and len(ws.marked) < FEW_MARKS:  # a probe learnt from the marks
        tip = (f" *Tip: {len(ws.marked)} marked is few for a probe: it may miss some of the feature, and unlearning "
               "then leaves those. On the face model, 36 hats marked on 9 pages took 24 of 32 labelled hats off, 10 "
               "marked on 3 pages only 16 (benchmarks/results/faces.md). **More samples** draws another page to mark.*")
    return (
        f"✓ Direction found from {source}: **{s['n_positive']} with the feature** "
        f"({100 * s['positive_share']:.1f}%). Moving a sample past the threshold on this line "
        f"catches {100 * s['linear_rule_recall']:.0f}% of those with the feature "
        f"(and wrongly {100 * s['linear_rule_false_positive_rate']:.0f}% of the others).{tip}"
    )


def _method_note(ws: Workspace) -> str:
    if ws.feature is None or ws.feature.image_oracle:
        return ("**How it runs:** a judge that scores every image (the preset, or a probe learnt from your marks) "
                "picks the samples to change while training.")
    return (
        "**How it runs: by the paper's rule.** Nothing here can judge the feature in a new image for this model "
        "(no image encoder is installed for it), so your marks give the direction only: samples whose latent lies "
        "past the threshold are the ones unlearning changes, and the comparison shows pictures and how much the "
        "other samples changed, but no count of the feature. "
        f"<small>({html.escape(ws.feature.note)})</small>"
    )


# plain words first; the paper's symbol and the exact measure in the tooltip
DETAIL_ROWS = [
    ("share_before", "samples with the feature, before", "the oracle's share of positives, original model", "{:.1%}"),
    ("share_after", "samples with the feature, after", "the oracle's share of positives, unlearned model", "{:.1%}"),
    ("removed", "how much of the feature went", "1 - after / before", "{:.0%}"),
    ("judge.share_before", "before, by an independent judge", "a judge that training never used (another classifier, or another stroke measure)", "{:.1%}"),
    ("judge.share_after", "after, by an independent judge", "a judge that training never used (another classifier, or another stroke measure)", "{:.1%}"),
    ("preservation.ssim", "how alike the other samples stay (1 = unchanged)",
     "SSIM to the original on the samples without the feature", "{:.3f}"),
    ("preservation.l1", "how much their pixels moved (0 = unchanged)",
     "mean |difference| (L1) to the original, samples without the feature, in [-1, 1] units", "{:.4f}"),
    ("preservation_clear.ssim", "alike, samples clearly without the feature", "SSIM, samples below the oracle's margin",
     "{:.3f}"),
    ("fd_before", "distance to real digits, before (lower = more realistic)",
     "Fréchet distance in the classifier's feature space, original vs all real MNIST digits", "{:.1f}"),
    ("fd_before_same_reference", "distance to real digits without the feature, before",
     "Fréchet distance, original vs the real digits without the feature (the fair baseline for 'after')", "{:.1f}"),
    ("fd_after", "distance to real digits without the feature, after",
     "Fréchet distance, unlearned model vs the real digits without the feature", "{:.1f}"),
]


def _value(report: dict, key: str):
    value = report
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def details_table(report: dict) -> str:
    """The compare report as an HTML table that wraps on a phone: plain words, the exact measure in a tooltip."""
    rows = []
    for key, label, tip, fmt in DETAIL_ROWS:
        value = _value(report, key)
        if value is not None:
            rows.append(f'<tr><td><abbr title="{html.escape(tip)}">{html.escape(label)}</abbr></td>'
                        f"<td>{fmt.format(value)}</td></tr>")
    rows.append(f"<tr><td>fresh samples compared</td><td>{report['n']}</td></tr>")
    return f'<table class="fu-table" id="details-table">{"".join(rows)}</table>'


def verdict(report: dict) -> str:
    """One line a newcomer can read: removed, kept, cost."""
    parts = []
    if _value(report, "share_before") is not None:
        parts.append(f"**Removed:** the feature went from {report['share_before']:.1%} to {report['share_after']:.1%} "
                     "of samples")
        judge = report.get("judge")
        if judge:
            parts[-1] += (f" (an independent judge, {judge['name']}, which training never saw: "
                          f"{judge['share_before']:.1%} → {judge['share_after']:.1%})")
    else:
        parts.append("**Removed:** not counted (nothing here judges this feature in new images: look at the pictures)")
    ssim = _value(report, "preservation.ssim")
    if ssim is not None:
        parts.append(f"**Kept:** the other samples stay {ssim:.0%} alike (1 = unchanged)")
    fd_after = _value(report, "fd_after")
    fd_before = _value(report, "fd_before_same_reference")  # the same reference as fd_after (reports since 2026-11-30)
    versus = "real digits without the feature"
    if fd_before is None:  # an older report: the original was measured against all real digits
        fd_before, versus = _value(report, "fd_before"), "real digits"
    if fd_before is not None and fd_after is not None:
        growth = fd_after / fd_before - 1
        if growth > 0.1:
            parts.append(f"**Cost:** ⚠ the samples look less like real digits (distance to {versus} {fd_before:.0f} → "
                         f"{fd_after:.0f}, +{growth:.0%}: more steps or a smaller learning rate may help)")
        else:
            parts.append(f"**Cost:** realism kept (distance to {versus} {fd_before:.0f} → {fd_after:.0f})")
    return " · ".join(parts) + "."


def gpu_seconds(steps: int, batch_size: int = 64) -> int:
    """ZeroGPU seconds to ask for an unlearning run of ``steps``: 20 s to start plus 0.1 s a step, within
    [30, 600]. A generous guess, not measured on a ZeroGPU (a shorter request queues sooner): on a whole H200 a face
    step of 64 took 11.6 ms and a process's first run 17 s (benchmarks/results/faces.md, "On a GPU"); the app's
    previews, a slice of a shared GPU and the model's loading come on top."""
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
    compute: ComputeThread | None = None  # where handlers and training run (main() makes one; tests: none)

    @classmethod
    def read(cls, *, default_model=None, page_size=32, collect_n=None, compare_n=None, train_concurrency=None,
             compute=None):
        env = os.environ.get
        return cls(
            default_model=default_model or env("FEATURE_UNLEARNING_APP_MODEL") or DEFAULT_MODEL,
            page_size=page_size,
            collect_n=int(collect_n or env("FEATURE_UNLEARNING_APP_COLLECT_N") or 4000),
            compare_n=int(compare_n or env("FEATURE_UNLEARNING_APP_COMPARE_N") or 2000),
            train_concurrency=int(train_concurrency or env("FEATURE_UNLEARNING_APP_TRAIN_CONCURRENCY") or 1),
            compute=compute,
        )


# --------------------------------------------------------------------------------- the run queue


class RunLine:
    """The unlearning runs waiting and running, all sessions together (what a queued person is told).

    Server-wide counts, not per-user state: a person's own run lives in their Workspace. A session (by its
    Gradio session hash) is counted as waiting from Run until its run starts, or until its page closes
    (``demo.unload`` calls :meth:`leave`), so a page closed while it waits no longer counts, its run does not
    start when its turn comes, and a run whose page closes stops at its next logged step (nobody would see it).
    """

    def __init__(self, concurrency: int):
        self.concurrency, self.running = concurrency, 0
        self.waiting: set[str] = set()  # the sessions whose runs wait
        self.gone: set[str] = set()  # the sessions whose pages closed
        self.stops: dict[str, threading.Event] = {}  # the running sessions' stop events
        self.last_seconds: float | None = None  # how long the last run took
        self.lock = threading.Lock()

    def join(self, key: str) -> tuple[int, float | None]:
        """Queue the run of session ``key``: (how many runs go first, a guess of the wait in s from the last run,
        None if unknown)."""
        with self.lock:
            self.waiting.discard(key)
            self.gone.discard(key)  # it pressed Run: its page is open
            ahead = max(0, self.running + len(self.waiting) - self.concurrency + 1)
            self.waiting.add(key)
        return ahead, (ahead * self.last_seconds if ahead and self.last_seconds else None)

    def start(self, key: str, stop: threading.Event | None = None) -> bool:
        """Session ``key``'s turn has come: False if its page closed meanwhile (then do not run; no
        :meth:`finish`), else count it as running; ``stop`` is set if its page closes during the run."""
        with self.lock:
            self.waiting.discard(key)
            if key in self.gone:
                return False
            self.running += 1
            if stop is not None:
                self.stops[key] = stop
            return True

    def finish(self, seconds: float, key: str | None = None) -> None:
        with self.lock:
            self.running = max(0, self.running - 1)
            self.last_seconds = seconds
            self.stops.pop(key, None)

    def leave(self, key: str) -> None:
        """Session ``key`` is gone (its page closed): its waiting run will never start, its running one stops."""
        with self.lock:
            self.waiting.discard(key)
            self.gone.add(key)
            stop = self.stops.pop(key, None)
        if stop is not None:
            stop.set()



# --------------------------------------------------------------------------- the layout, step by step


def examples_step(ui: SimpleNamespace) -> None:
    gr.Markdown("## Finished examples\nOpen one to see a whole run at once: the feature, its direction, the "
                "unlearned model and the comparison fill in below. Then change anything to start your own.")
    with gr.Row(equal_height=True):
        ui.example_pick = gr.Dropdown(choices=example_choices(), value=None, label="Example (choosing one opens it)",
                                      scale=3, elem_id="example-pick")
        ui.example_btn = gr.Button("Open", scale=1, elem_id="example-btn")
    ui.example_status = gr.Markdown(elem_classes="fu-status", elem_id="example-status")


def model_step(ui: SimpleNamespace, settings: Settings) -> None:
    gr.Markdown("## 1 · Model")
    offered, others = model_choices()
    names = [name for _, name in offered]
    with gr.Row(equal_height=True):
        ui.model_pick = gr.Dropdown(
            choices=offered, value=settings.default_model if settings.default_model in names else None,
            label="Model (choosing one loads it)", scale=2, elem_id="model-pick",
        )
        ui.model_path = gr.Textbox(
            value="" if settings.default_model in names else settings.default_model,
            label="…or a Hub repo id / local folder (used when filled in)",
            placeholder="org/name  or  /path/to/folder",
            scale=3,
        )
        ui.load_btn = gr.Button("Load", variant="primary", scale=1)
    if others:
        with gr.Accordion(f"{len(others)} more models, not available here yet", open=False):
            gr.Markdown("\n".join(others), elem_id="other-models")
    ui.model_status = gr.Markdown(elem_classes="fu-status", elem_id="model-status")
    ui.terms = gr.Markdown(elem_id="model-terms")


def feature_step(ui: SimpleNamespace) -> None:
    gr.Markdown(
        "## 2 · Feature\nClick the samples that show the feature you want gone (click again to unmark), "
        "or let a preset label them. Marked samples get an amber frame."
    )
    with gr.Row():
        with gr.Column(scale=4, min_width=320):
            ui.grid = _picture("Samples: click to mark / unmark", "sample-grid", elem_classes="fu-grid")
        with gr.Column(scale=1, min_width=240):
            ui.counts = gr.Markdown(elem_id="counts")
            with gr.Row():
                ui.prev_btn = gr.Button("◀ Page", size="sm", min_width=60)
                ui.next_btn = gr.Button("Page ▶", size="sm", min_width=60)
            ui.more_btn = gr.Button("More samples")
            ui.clear_btn = gr.Button("Clear marks", size="sm")
            ui.preset = gr.Dropdown(choices=[BY_HAND, *PRESETS], value="", label="Preset feature (choosing one labels the samples)",
                                    elem_id="preset")
            with gr.Accordion("Mark by number", open=False):
                ui.marks_box = gr.Textbox(
                    label="Marked samples (0 = top left, numbered across pages; e.g. 0, 3, 5-9)", elem_id="marks"
                )
                ui.marks_btn = gr.Button("Set marks", size="sm")
    ui.feature_status = gr.Markdown(elem_classes="fu-status", elem_id="feature-status")


def direction_step(ui: SimpleNamespace) -> None:
    gr.Markdown(
        "## 3 · Direction\nThe feature's direction in latent space: rows are samples moved along it "
        "(0 = the sample itself); the histogram shows where samples with and without the feature fall."
    )
    ui.direction_btn = gr.Button("Find the direction", variant="primary")
    ui.direction_status = gr.Markdown(elem_classes="fu-status", elem_id="direction-status")
    with gr.Row(equal_height=True):
        ui.alpha_slider = clamped_slider(
            ALPHAS[0], ALPHAS[-1], value=0, step=0.25, label="Move along the direction",
            info=f"from {ALPHAS[0]:g} to +{ALPHAS[-1]:g}; the pictures follow as you drag", scale=1, min_width=240,
            elem_id="alpha",
        )
        with gr.Column(scale=3, min_width=300):
            ui.live_caption = gr.Markdown(_live_caption(0), elem_id="live-caption")
            ui.live = _picture("Moved along the direction", "live")
    with gr.Row():
        with gr.Column(min_width=300):
            gr.Markdown(f"**Traversal**: each row one sample moved from {ALPHAS[0]:g} to +{ALPHAS[-1]:g} "
                        "(framed: the sample itself)")
            ui.traversal = _picture("Traversal", "traversal")
        with gr.Column(min_width=300):
            gr.Markdown("**Where the samples fall** along the direction, and the threshold")
            ui.histogram = gr.Plot(label="Projections", show_label=False, format="png", elem_id="histogram")


def unlearn_step(ui: SimpleNamespace, defaults: UnlearnConfig) -> None:
    gr.Markdown(
        "## 4 · Unlearn\nFine-tunes a copy of the model: samples with the feature learn to look like their "
        "feature-free versions, all others stay as they were. "
        + ("Runs on a ZeroGPU." if _run_unlearning_gpu is not None else "Runs on the GPU when there is one, else on the CPU.")
    )
    ui.method_note = gr.Markdown(_method_note_default(), elem_id="method-note")
    with gr.Row():
        # the bounds are checked by session.check_settings, which says what is wrong in the run's status line
        # (Gradio's own minimum/maximum would refuse with a bare error, and precision=0 would round 2.5 quietly)
        ui.steps_in = gr.Number(value=defaults.steps, label="Steps", info=f"{STEPS_RANGE[0]} to {STEPS_RANGE[1]}",
                                elem_id="steps")
        ui.lr_in = gr.Number(value=defaults.lr, label="Learning rate",
                             info=f"{LR_RANGE[0]:g} to {LR_RANGE[1]:g}; Adam's (peak) rate",
                             elem_id="lr")
        ui.alpha_in = gr.Number(
            value=defaults.alpha, label="Weight of forgetting vs keeping", elem_id="alpha-in",
            info=f"{ALPHA_RANGE[0]:g} to {ALPHA_RANGE[1]:g}; the paper's α (weight of L_unlearn + L_percep vs L_recon)",
        )
    with gr.Row():
        ui.run_btn = gr.Button("Run unlearning", variant="primary", elem_id="run-btn")
        ui.cancel_btn = gr.Button("Cancel", variant="stop", interactive=False, elem_id="cancel-btn")
    ui.run_status = gr.Markdown(elem_classes="fu-status", elem_id="run-status")
    ui.run_bar = gr.HTML(_bar(0, 1), elem_id="run-bar")
    with gr.Row():
        with gr.Column(min_width=300):
            gr.Markdown("**Preview**: the same latents before (top) and now (framed: labelled as showing the feature "
                        "when the direction was found, by the oracle or the click probe, which can be wrong)")
            ui.preview = _picture("Preview", "preview")
        with gr.Column(min_width=300):
            gr.Markdown("**Losses** while training")
            ui.loss_plot = gr.Plot(label="Losses", show_label=False, format="png", elem_id="losses")


def _method_note_default() -> str:
    return "**How it runs:** find the direction first (step 3)."


def compare_step(ui: SimpleNamespace) -> None:
    gr.Markdown("## 5 · Compare and download")
    with gr.Row():
        ui.compare_btn = gr.Button("Compare original and unlearned", variant="primary")
        ui.export_btn = gr.Button("Export the unlearned model (.zip)")
    ui.compare_status = gr.Markdown(elem_classes="fu-status", elem_id="compare-status")
    gr.Markdown("**The same latents** in the original and the unlearned model, and where they differ "
                "(red: ink or colour removed, blue: added, brighter: a bigger change; framed: labelled as showing the feature "
                "when the direction was found, by the oracle or the click probe, which can be wrong)")
    with gr.Row():
        ui.before_pic = _picture("original", "compare-before", show_label=True, min_width=220)
        ui.after_pic = _picture("unlearned", "compare-after", show_label=True, min_width=220)
        ui.diff_pic = _picture("difference", "compare-diff", show_label=True, min_width=220)
    with gr.Accordion("Details: every number behind the verdict", open=False, elem_id="details"):
        ui.metrics = gr.HTML(elem_id="metrics")
    with gr.Row(equal_height=True):
        ui.seed_in = gr.Number(value=0, label="Seed of fresh samples", scale=1, min_width=160, elem_id="seed")
        ui.samples_btn = gr.Button("New samples", scale=1, min_width=160, elem_id="samples-btn")
    ui.samples_status = gr.Markdown(elem_classes="fu-status", elem_id="samples-status")
    ui.samples_pic = _picture("Fresh samples: original (top) and unlearned (below)", "fresh-samples")
    with gr.Row():
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
# Whatever belonged to an older feature or run is "stale" (see bind): cleared when the model or feature changes.


def _compare_cleared() -> tuple:
    """compare status, export status, before, after, difference, details, fresh samples, download, samples status."""
    return ("", "", None, None, None, "", None, None, "")


def _run_cleared() -> tuple:
    """run status, progress bar, loss plot, preview (then the compare section)."""
    return ("", _bar(0, 1), None, None, *_compare_cleared())


def _all_cleared() -> tuple:
    """direction status, traversal, histogram, live picture, method note (then the run section)."""
    return ("", None, None, None, _method_note_default(), *_run_cleared())


N_STALE = len(_all_cleared())


def _keep() -> tuple:
    return (gr.skip(),) * N_STALE


def _loaded(ws: Workspace) -> str:
    """The model status line: which model, what it is, its latent and image sizes."""
    m, name = ws.model, ws.model_name
    info = hub.REGISTRY[name].description if name in hub.REGISTRY else type(m).__name__
    return f"✓ Loaded **{name}**: {info}; latent dimension {m.latent_dim}, images {'×'.join(map(str, m.image_shape))}."


def load(choice, path, old, *, page_size: int):
    """(model status, terms, workspace, page, picker, preset, feature status, grid, counts, marks, stale...)."""
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
        # the picker goes back to the model still in use (or empty when that one came from the text box)
        back = old.model_name if old is not None and old.model_name in hub.REGISTRY else None
        return (_warn(message), gr.skip(), gr.skip(), gr.skip(), gr.update(value=back), *(gr.skip(),) * 5, *_keep())
    _close(old)
    status = _loaded(ws)
    digits = _is_digits(ws)
    preset = gr.update(value="", interactive=digits,
                       info=None if digits else "presets label 28×28 digits only: mark the samples by hand")
    return (status, _terms(name), ws, 0, gr.skip(), preset, "", *_feature_view(ws, 0), *_all_cleared())


def click(ws, page, evt: gr.SelectData):
    ws = _need(ws)
    x, y = evt.index
    images, _ = ws.page(page)
    i = viz.grid_index(x, y, n=len(images), nrow=GRID_COLUMNS, tile=_tile(ws), padding=GRID_PADDING)
    if i is None:
        return (gr.skip(),) * (5 + N_STALE)
    marked = ws.toggle(page * ws.page_size + i)
    return (f"{'Marked' if marked else 'Unmarked'} sample {page * ws.page_size + i}.", *_feature_view(ws, page), page,
            *_all_cleared())


def set_marks(ws, page, text):
    ws = _need(ws)
    ws.set_marked(_parse_indices(text))
    return (f"{len(ws.marked)} samples marked.", *_feature_view(ws, page), page, *_all_cleared())


def turn_page(ws, page, *, delta: int):
    ws = _need(ws)
    page = min(max(page + delta, 0), ws.n_pages - 1)
    return ("", *_feature_view(ws, page), page, *_keep())


def more(ws):
    ws = _need(ws)
    page = ws.add_page()
    return (f"Drew {ws.page_size} more samples (page {page + 1}).", *_feature_view(ws, page), page, *_keep())


def clear(ws, page):
    ws = _need(ws)
    ws.clear()
    return ("Marks cleared.", *_feature_view(ws, page), page, *_all_cleared())


def use_preset(ws, page, value, *, collect_n: int):
    ws = _need(ws)
    if not value:  # "none": back to marking by hand, keeping the marks the preset made
        if ws.preset is None:
            return ("", *_feature_view(ws, page), page, *_keep())
        ws.set_marked(sorted(ws.marked))
        return ("Mark by hand: the preset's marks stay until you change them.", *_feature_view(ws, page), page,
                *_all_cleared())
    n = ws.use_preset(value)
    status = (
        f"The preset **{_preset_label(value)}** finds the feature in {n} of the {ws.n_samples} samples "
        f"shown; finding the direction will label {collect_n} fresh samples with it."
    )
    return (status, *_feature_view(ws, page), page, *_all_cleared())


def find_direction(ws, alpha, *, collect_n: int):
    """(direction status, traversal, histogram, live picture, method note, run section..., caption, alpha input)."""
    ws = _need(ws)
    ws.find_feature(n=collect_n)
    return (
        *_direction_view(ws, alpha),
        "", _bar(0, 1), None, _show(ws.preview(), nrow=8, highlight=ws.preview_marked), *_compare_cleared(),
        _live_caption(alpha),
        *_settings_shown(ws),  # the model's and the method's own defaults (the faces', the paper's rule's)
    )


def _direction_view(ws: Workspace, alpha) -> tuple:
    """(direction status, traversal, histogram, live picture, method note) of the workspace's feature."""
    feature = ws.feature
    strips, scale = viz.fit(ws.traversal(ALPHAS), 84)
    return (_feature_summary(ws), viz.traversal_grid(strips, ALPHAS, scale=scale),
            viz.projection_histogram(*feature.projections(), feature.threshold), _live(ws, alpha), _method_note(ws))


def _settings_shown(ws: Workspace) -> tuple[int, float, float]:
    """(steps, learning rate, weight) a run of this workspace's feature starts from."""
    config = ws.config()
    return config.steps, config.lr, config.alpha


def move(ws, alpha):
    ws = _need(ws)
    if ws.feature is None:
        return gr.skip(), _live_caption(alpha), gr.skip()
    return gr.skip(), _live_caption(alpha), _live(ws, alpha)


def queue_run(ws, request: gr.Request, *, line: RunLine):
    """Before the run waits its turn: (status, run button, cancel button). Not queued itself."""
    if ws is None or ws.feature is None:
        return gr.skip(), gr.skip(), gr.skip()
    ws.queue_run()
    ahead, wait = line.join(request.session_hash)
    if ahead == 0:
        status = "Starting…"
    else:
        guess = f", about {wait:.0f} s judging by the last run" if wait else ""
        status = (f"⏳ Waiting for its turn: {ahead} run{'s' if ahead > 1 else ''} of other people go first{guess}. "
                  "It starts by itself.")
    return status, gr.update(interactive=False), gr.update(interactive=True)


def _preview_picture(ws: Workspace, before, now, label: str):
    return _titled([("before", before), (label, now)], 84, nrow=8, highlight=ws.preview_marked)


def run(ws, steps, lr, alpha, slider, request: gr.Request, *, line: RunLine, compute: ComputeThread | None = None):
    """Stream: (status, progress bar, loss plot, preview, run button, cancel button, live picture, then the
    compare section cleared)."""
    idle = (gr.update(interactive=True), gr.update(interactive=False))
    if not line.start(request.session_hash, ws.stop if ws is not None else None):
        yield ("The page was closed before its turn: the run did not start.", gr.skip(), gr.skip(), gr.skip(), *idle,
               gr.skip(), *(gr.skip(),) * len(_compare_cleared()))
        return
    started = time.perf_counter()
    try:
        yield from _run(ws, steps, lr, alpha, slider, idle, compute)
    finally:
        line.finish(time.perf_counter() - started, request.session_hash)


def _run(ws, steps, lr, alpha, slider, idle, compute=None):
    keep = (gr.skip(),) * len(_compare_cleared())
    try:
        ws = _need(ws)
        if ws.feature is None:
            raise ValueError("find the feature's direction first (step 3)")
        config = ws.config(steps=steps, lr=lr, alpha=alpha)
    except ValueError as err:
        yield (_warn(str(err)), gr.skip(), gr.skip(), gr.skip(), *idle, gr.skip(), *keep)
        return
    if ws.cancelled:
        yield ("Cancelled before it started.", gr.skip(), gr.skip(), gr.skip(), *idle, gr.skip(), *keep)
        return
    before = ws.preview()
    how = "" if config.method == "oracle" else " by the paper's rule"
    yield (f"Starting {config.steps} steps{how}…", _bar(0, config.steps),
           viz.loss_curves({}, total_steps=config.steps), _preview_picture(ws, before, before, "now"),
           gr.update(interactive=False), gr.update(interactive=True), gr.skip(), *_compare_cleared())
    shown = -math.inf  # when the last progress update was sent: each costs the page a plot and two pictures
    try:
        for p in ws.start_run(config, runner=_run_unlearning_gpu, compute=compute):
            if not (p.done or p.abandoned) and time.monotonic() - shown < UPDATE_EVERY_S:
                continue  # the next report carries the whole curve; only the preview between is skipped
            shown = time.monotonic()
            bar, plot = _bar(p.step, p.steps), viz.loss_curves(p.curves, total_steps=p.steps)
            picture = _preview_picture(ws, before, p.preview, f"step {p.step}")
            if p.abandoned:
                yield (f"Stopped at step {p.step} of {p.steps}; on a ZeroGPU the partial model is not kept.",
                       bar, plot, picture, *idle, gr.skip(), *keep)
            elif not p.done:
                left = p.elapsed / max(p.step, 1) * (p.steps - p.step)
                yield (f"Step {p.step} of {p.steps} · {p.elapsed:.0f} s · about {left:.0f} s left", bar, plot, picture,
                       gr.skip(), gr.skip(), gr.skip(), *keep)
            else:
                done = f"Stopped at step {p.step} of {p.steps}" if p.stopped_early else f"✓ Unlearned in {p.steps} steps"
                yield (f"{done}{how} ({p.history.seconds:.1f} s). Compare the result below; the pictures in step 3 "
                       "now show the unlearned model too.", bar, plot, picture, *idle, _live(ws, slider), *keep)
    except UnlearningDiverged as err:
        kept = (f" Kept the model from step {err.history.step[-1]}: compare or export it."
                if ws.result is not None and err.history is not None and err.history.step else "")
        yield (_warn(f"The run diverged at step {getattr(err, 'step', '?')} (the loss stopped being a number). "
                     f"Try a smaller learning rate.{kept}"), gr.skip(), gr.skip(), gr.skip(), *idle,
               _live(ws, slider) if ws.result is not None else gr.skip(), *keep)
    except Exception as err:
        log.exception("unlearning failed")
        message = str(err) if isinstance(err, ValueError) else f"unlearning failed ({type(err).__name__}: {err})"
        yield (_warn(message), gr.skip(), gr.skip(), gr.skip(), *idle, gr.skip(), *keep)


def cancel(ws):
    if ws is None:
        return _warn("nothing to cancel")
    ws.cancel()  # the run ends at its next logged step (and keeps the model so far, off ZeroGPU)
    return "Stopping at the next logged step…"


def compare(ws, seed, *, compare_n: int):
    """(verdict, original, unlearned, difference, details table, fresh samples)."""
    ws = _need(ws)
    return _compare_view(ws, ws.compare(n=compare_n), seed)


def _compare_view(ws: Workspace, report: dict, seed) -> tuple:
    before, after = ws.preview(), ws.preview(ws.result.unlearned)
    pictures = [_show(x, 84, nrow=4, highlight=ws.preview_marked) for x in (before, after)]
    pictures.append(_show(viz.difference_images(before, after), 84, nrow=4))
    return (f"✓ On {report['n']} fresh samples. {verdict(report)}", *pictures, details_table(report),
            _fresh(ws, seed))


def open_example(name, old, alpha, seed, *, page_size: int):
    """A finished example, every step filled in: (example status, the load outputs with the stale part filled,
    steps, learning rate, weight)."""
    if not name:
        raise ValueError("choose an example first")
    ws = Workspace.open_example(name, page_size=page_size)
    _close(old)
    info, history = ws.example, ws.result.history
    made, config = info["made"], info["config"]
    digits = _is_digits(ws)
    marked = (f"The preset **{_preset_label(ws.preset)}** marked the samples below." if ws.preset else
              f"The {len(ws.marked)} faces marked by hand on these {ws.n_samples} samples made the feature.")
    curves = {"step": history.step, **{k: getattr(history, k) for k in LOSS_KEYS}}
    before = ws.preview()
    ran = (f"✓ Finished example: unlearned in {config['steps']} steps of {config['batch_size']} "
           f"({made['unlearn_seconds']:.0f} s on {made['machine']}, {made['date']}); the numbers below were measured "
           "then. Press Run to watch the same settings train.")
    compared = _compare_view(ws, ws.result.comparison, seed)
    status = (f"✓ Opened **{info['title']}**: every step below shows what its default run made. Change anything "
              "to start your own.")
    return (
        status,
        _loaded(ws), _terms(ws.model_name), ws, 0, gr.update(value=ws.model_name),
        gr.update(value=ws.preset or "", interactive=digits), marked, *_feature_view(ws, 0),
        *_direction_view(ws, alpha),
        ran, _bar(config["steps"], config["steps"]), viz.loss_curves(curves, total_steps=config["steps"]),
        _preview_picture(ws, before, ws.preview(ws.result.unlearned), "unlearned"),
        compared[0], "", *compared[1:5], compared[5], None, "",
        config["steps"], config["lr"], config["alpha"],
    )


def _fresh(ws: Workspace, seed) -> np.ndarray:
    before, after = ws.samples(int(seed or 0), n=8)
    return _titled([("original", before), ("unlearned", after)], 84, nrow=8)


def new_samples(ws, seed, *, step: int):
    """(samples status, seed, fresh samples): original vs unlearned on the latents of ``seed + step``."""
    ws = _need(ws)
    if seed is not None and float(seed) != int(seed):
        raise ValueError(f"the seed must be a whole number, got {seed}")
    seed = int(seed or 0) + step
    if not 0 <= seed < 2**31:
        raise ValueError(f"the seed must be a whole number from 0 to {2**31 - 1}")
    return f"Fresh samples from seed {seed}: original (top row), unlearned (bottom row).", seed, _fresh(ws, seed)


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
    guard = functools.partial(_guard, compute=settings.compute)
    ws, page = ui.ws, ui.page
    compare_part = [ui.compare_status, ui.export_status, ui.before_pic, ui.after_pic, ui.diff_pic, ui.metrics,
                    ui.samples_pic, ui.download, ui.samples_status]
    run_part = [ui.run_status, ui.run_bar, ui.loss_plot, ui.preview, *compare_part]
    stale = [ui.direction_status, ui.traversal, ui.histogram, ui.live, ui.method_note, *run_part]
    assert len(stale) == N_STALE
    marks_out = [ui.feature_status, ui.grid, ui.counts, ui.marks_box, page, *stale]
    n_marks = len(marks_out)

    load_outputs = [ui.model_status, ui.terms, ws, page, ui.model_pick, ui.preset, ui.feature_status, ui.grid,
                    ui.counts, ui.marks_box, *stale]
    load_fn = guard(len(load_outputs))(functools.partial(load, page_size=settings.page_size))
    load_in = [ui.model_pick, ui.model_path, ws]
    busy = {"show_progress": "minimal", "show_progress_on": [ui.model_status]}  # the grid stays while loading
    ui.load_btn.click(load_fn, load_in, load_outputs, api_name="load_model", **busy)
    ui.model_path.submit(load_fn, load_in, load_outputs, api_visibility="private", **busy)
    ui.model_pick.input(
        lambda: "", None, [ui.model_path], queue=False, api_visibility="private"
    ).then(load_fn, load_in, load_outputs, api_visibility="private", **busy)
    demo.load(load_fn, load_in, load_outputs, api_visibility="private")

    example_out = [ui.example_status, *load_outputs, ui.steps_in, ui.lr_in, ui.alpha_in]
    example_fn = guard(len(example_out))(functools.partial(open_example, page_size=settings.page_size))
    example_in = [ui.example_pick, ws, ui.alpha_slider, ui.seed_in]
    ui.example_btn.click(example_fn, example_in, example_out, api_name="open_example",
                         show_progress="minimal", show_progress_on=[ui.example_status])
    ui.example_pick.input(example_fn, example_in, example_out, api_visibility="private",
                          show_progress="minimal", show_progress_on=[ui.example_status])

    ui.grid.select(
        guard(n_marks)(click), [ws, page], marks_out, api_visibility="private", show_progress="hidden",
        trigger_mode="multiple",  # a quick second click is queued, not dropped ...
        concurrency_limit=1, concurrency_id="marks",  # ... and handled after the first
    )
    ui.marks_btn.click(guard(n_marks)(set_marks), [ws, page, ui.marks_box], marks_out, api_name="set_marks")
    ui.marks_box.submit(guard(n_marks)(set_marks), [ws, page, ui.marks_box], marks_out, api_visibility="private")
    for button, delta in ((ui.prev_btn, -1), (ui.next_btn, 1)):
        button.click(guard(n_marks)(functools.partial(turn_page, delta=delta)), [ws, page], marks_out,
                     api_visibility="private")
    ui.more_btn.click(guard(n_marks)(more), [ws], marks_out, api_name="more_samples")
    ui.clear_btn.click(guard(n_marks)(clear), [ws, page], marks_out, api_name="clear_marks")
    ui.preset.input(guard(n_marks)(functools.partial(use_preset, collect_n=settings.collect_n)),
                    [ws, page, ui.preset], marks_out, api_name="use_preset")

    direction_out = [*stale[:5], *run_part, ui.live_caption, ui.steps_in, ui.lr_in, ui.alpha_in]
    ui.direction_btn.click(
        guard(len(direction_out))(functools.partial(find_direction, collect_n=settings.collect_n)),
        [ws, ui.alpha_slider], direction_out, api_name="find_direction",
    )
    ui.alpha_slider.change(
        guard(3)(move), [ws, ui.alpha_slider], [ui.direction_status, ui.live_caption, ui.live], api_name="traverse",
        show_progress="hidden", trigger_mode="always_last",  # while dragging: the newest value wins
    )

    line = RunLine(settings.train_concurrency)

    # closures, not functools.partial: Gradio passes the gr.Request (the session) only to a function whose own
    # signature asks for it
    def queue_run_fn(ws, request: gr.Request):
        return queue_run(ws, request, line=line)

    def run_fn(ws, steps, lr, alpha, slider, request: gr.Request):
        yield from run(ws, steps, lr, alpha, slider, request, line=line, compute=settings.compute)

    def leave_fn(request: gr.Request):
        line.leave(request.session_hash)

    ui.run_btn.click(
        queue_run_fn, [ws], [ui.run_status, ui.run_btn, ui.cancel_btn], queue=False,
        js=SCROLL_TO_RUN, api_visibility="private",
    ).then(
        run_fn, [ws, ui.steps_in, ui.lr_in, ui.alpha_in, ui.alpha_slider],
        [ui.run_status, ui.run_bar, ui.loss_plot, ui.preview, ui.run_btn, ui.cancel_btn, ui.live, *compare_part],
        api_name="unlearn", concurrency_limit=settings.train_concurrency, concurrency_id="unlearn",
        show_progress="full", show_progress_on=[ui.run_status],  # Gradio's queue position and wait, visible
    )
    ui.cancel_btn.click(cancel, [ws], [ui.run_status], api_name="cancel", queue=False)
    demo.unload(leave_fn)  # a page closed while its run waits no longer counts

    ui.compare_btn.click(
        guard(6)(functools.partial(compare, compare_n=settings.compare_n)), [ws, ui.seed_in],
        [ui.compare_status, ui.before_pic, ui.after_pic, ui.diff_pic, ui.metrics, ui.samples_pic],
        api_name="compare", concurrency_limit=2, concurrency_id="compare",
    )
    samples_out = [ui.samples_status, ui.seed_in, ui.samples_pic]
    ui.samples_btn.click(guard(3)(functools.partial(new_samples, step=1)), [ws, ui.seed_in], samples_out,
                         api_name="new_samples", show_progress="hidden")
    ui.seed_in.submit(guard(3)(functools.partial(new_samples, step=0)), [ws, ui.seed_in], samples_out,
                      api_visibility="private", show_progress="hidden")
    ui.export_btn.click(guard(2)(export), [ws], [ui.export_status, ui.download], api_name="export")
    ui.push_btn.click(guard(1)(push), [ws, ui.repo_in, ui.token_in, ui.private_in], [ui.push_status], api_name="push")


# ------------------------------------------------------------------------------------------- the UI


def build_demo(
    *,
    default_model: str | None = None,
    page_size: int = 32,
    collect_n: int | None = None,
    compare_n: int | None = None,
    train_concurrency: int | None = None,
    compute: ComputeThread | None = None,
) -> gr.Blocks:
    """The Blocks of the app. Arguments override the environment variables in the module docstring;
    tests pass tiny values (a small ``collect_n`` and ``compare_n``). ``compute``: the thread that handlers
    and training run on (:func:`main` makes one); without it they run in Gradio's threads."""
    settings = Settings.read(default_model=default_model, page_size=page_size, collect_n=collect_n,
                             compare_n=compare_n, train_concurrency=train_concurrency, compute=compute)
    ui = SimpleNamespace()
    with gr.Blocks(title="Feature unlearning", analytics_enabled=False, delete_cache=(3600, 7200)) as demo:
        ui.ws = gr.State(None, delete_callback=_close)  # this session's Workspace; its files go when it ends
        ui.page = gr.State(0)  # the page of samples on screen
        gr.Markdown(INTRO)
        examples_step(ui)
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
    launch(build_demo(compute=_compute_thread(Settings.read())))


def _compute_thread(settings: Settings) -> ComputeThread | None:
    """A :class:`~feature_unlearning.utils.ComputeThread` for a CPU app with one run at a time (the default):
    made before any torch work, it keeps the cores' OpenMP pool in one thread (a run in a Gradio thread was
    30% slower for the digits). On a GPU, or with several runs at once (each needs its own thread), none."""
    if default_device() != "cpu" or settings.train_concurrency != 1:
        return None
    return ComputeThread()


if __name__ == "__main__":
    main()
