"""Interactive work on one model: the samples a person marks, the feature, streamed unlearning, export.

A :class:`Workspace` is what one person has in progress: a generator, the pages of samples shown so
far and which of them are marked as showing the feature (by clicks or by a preset oracle), the
:class:`~feature_unlearning.feature.Feature` found from them, and the
:class:`~feature_unlearning.result.UnlearnResult` of the last run. Every change of that state is a
method here (``toggle``, ``use_preset``, ``find_feature``, ``start_run``, ``cancel``, ``compare``, ...).
The Gradio app keeps one per browser session (in ``gr.State``); a notebook can drive one the same way.
:func:`unlearn_stream` runs :meth:`Feature.unlearn <feature_unlearning.feature.Feature.unlearn>` in a
thread and yields its progress, so a front end can draw a live loss curve and preview and stop it.
Nothing here imports a UI library.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import directions
from .directions import ALPHAS
from .feature import Feature
from .models.base import render
from .oracles import Oracle, get_oracle
from .result import UnlearnResult
from .unlearn import History, UnlearnConfig, UnlearningDiverged
from .utils import ComputeThread

LOSS_KEYS = ("loss", "recon", "unlearn", "percep")

# What a person may ask for in one run (the library accepts more; these keep a shared machine usable and
# catch typos: 1e9 for 1e-4, 100000000 steps). The defaults (UnlearnConfig) lie well inside.
STEPS_RANGE = (1, 5000)
LR_RANGE = (1e-6, 1e-2)
ALPHA_RANGE = (0.0, 10.0)


def check_settings(steps, lr, alpha) -> tuple[int, float, float]:
    """``(steps, lr, alpha)`` as numbers inside :data:`STEPS_RANGE`, :data:`LR_RANGE`, :data:`ALPHA_RANGE`;
    ``ValueError`` saying which one is off and what would be right."""
    if steps is None or lr is None or alpha is None:
        raise ValueError("fill in the steps, the learning rate and alpha")
    values = {"steps": steps, "learning rate": lr, "alpha": alpha}
    for what, value in values.items():
        if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"the {what} must be a number, got {value!r}")
    if float(steps) != int(steps):
        raise ValueError(f"the steps must be a whole number, got {steps:g}")
    for what, value, (lo, hi) in (("steps", steps, STEPS_RANGE), ("learning rate", lr, LR_RANGE),
                                  ("alpha", alpha, ALPHA_RANGE)):
        if not lo <= value <= hi:
            got = int(value) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"
            raise ValueError(f"the {what} must be between {lo:g} and {hi:g}, got {got}")
    return int(steps), float(lr), float(alpha)


def load_generator(name_or_path: str) -> nn.Module:
    """:func:`~feature_unlearning.hub.load_pretrained`, refusing models that are not generators.

    Raises ``ValueError`` with a readable message (unknown name, missing folder, offline Hub, a classifier).
    """
    from .hub import load_pretrained

    name = str(name_or_path).strip()
    if not name:
        raise ValueError("no model given: pick a bundled model or type a Hub repo id (org/name) or a local folder")
    model = load_pretrained(name)
    if not all(hasattr(model, a) for a in ("latent_dim", "image_shape", "sample_latent")):
        raise ValueError(
            f"{name!r} is a {type(model).__name__}, not a generator: pick a GAN generator or VAE "
            "(a model with latent_dim, image_shape and forward(z) -> images)"
        )
    return model


@dataclass
class Workspace:
    """One person's work on ``model``: shown samples, marks, the feature, the unlearned model.

    ``z`` ``(N, latent_dim)`` and ``images`` ``(N, C, H, W)`` in [-1, 1] are every sample shown so far,
    page after page (``page_size`` each); ``marked`` holds the indices into them that show the feature.
    """

    model: nn.Module
    model_name: str
    page_size: int = 32
    seed: int = 0
    z: torch.Tensor | None = None
    images: torch.Tensor | None = None
    marked: set[int] = field(default_factory=set)
    preset: str | None = None  # name of the oracle that labelled the samples, None when marked by hand
    oracle: Oracle | None = None
    feature: Feature | None = None
    preview_z: torch.Tensor | None = None  # latents shown while unlearning and when comparing
    preview_marked: list[int] = field(default_factory=list)  # which of them showed the feature
    result: UnlearnResult | None = None  # the last run's, set by start_run
    stop: threading.Event = field(default_factory=threading.Event, repr=False)  # set to stop a running unlearning
    export_dir: Path | None = field(default=None, repr=False)  # where export() writes, made on first use
    example: dict | None = field(default=None, repr=False)  # example.json of a finished example (open_example)

    @classmethod
    def open(cls, name_or_path: str, *, page_size: int = 32, seed: int = 0) -> Workspace:
        """Load a generator (see :func:`load_generator`) and draw the first page of samples."""
        if page_size < 2:
            raise ValueError(f"page_size must be >= 2, got {page_size}")
        ws = cls(load_generator(name_or_path), str(name_or_path).strip(), page_size=page_size, seed=seed)
        ws.add_page()
        return ws

    @classmethod
    def open_example(cls, name: str, *, page_size: int = 32) -> Workspace:
        """A workspace at the end of a finished example (:mod:`feature_unlearning.examples`): its model, the
        samples it was marked on (a preset's first page, or the pages a user clicked), the feature and the
        unlearned model with the comparison measured when it was made. ``ValueError`` when it is not ready here."""
        from . import examples

        ex = examples.load(name)
        ws = cls(ex.model, ex.example.model, page_size=page_size)
        spec = ex.example.feature
        if isinstance(spec, dict):  # the pages of samples the clicks were made on, marked as they were
            ws.z = ex.model.sample_latent(int(spec["n"]), seed=int(spec["seed"]), device="cpu")
            ws.images = render(ex.model, ws.z).cpu()
            ws.marked = {int(i) for i in spec["indices"]}
        else:
            ws.preset, ws.oracle = spec, ex.feature.oracle
            ws.add_page()
        ws.feature, ws.preview_z, ws.preview_marked = ex.feature, ex.preview_z, ex.preview_marked
        ws.result = ex.result
        ws.example = ex.info
        return ws

    # ------------------------------------------------------------------------------------- samples

    @property
    def n_samples(self) -> int:
        return 0 if self.z is None else len(self.z)

    @property
    def n_pages(self) -> int:
        return -(-self.n_samples // self.page_size)

    def add_page(self) -> int:
        """Draw ``page_size`` more samples (a fresh seed per page); a preset labels them at once.
        Returns the new page's number (0-based)."""
        page = self.n_pages
        z = self.model.sample_latent(self.page_size, seed=self.seed + page, device="cpu")
        images = render(self.model, z).cpu()
        self.z = z if self.z is None else torch.cat([self.z, z])
        self.images = images if self.images is None else torch.cat([self.images, images])
        if self.oracle is not None:
            start = page * self.page_size
            labels = self.oracle.labels(images)
            self.marked |= {start + int(i) for i in labels.nonzero().flatten()}
        return page

    def page(self, page: int) -> tuple[torch.Tensor, list[int]]:
        """The images ``(page_size, C, H, W)`` of ``page`` and the page-relative indices marked on it."""
        if not 0 <= page < self.n_pages:
            raise ValueError(f"page {page} does not exist; pages 0..{self.n_pages - 1} have been drawn")
        start = page * self.page_size
        stop = min(start + self.page_size, self.n_samples)
        return self.images[start:stop], sorted(i - start for i in self.marked if start <= i < stop)

    # --------------------------------------------------------------------------------------- marks

    def toggle(self, index: int) -> bool:
        """Mark sample ``index`` (of all shown) or unmark it if it was marked; returns whether it is marked now.

        Marking by hand ends a preset: from now on the marks themselves define the feature.
        """
        index = int(index)
        if not 0 <= index < self.n_samples:
            raise ValueError(f"no sample {index}: {self.n_samples} samples are shown (0..{self.n_samples - 1})")
        self._by_hand()
        self.marked ^= {index}
        return index in self.marked

    def set_marked(self, indices: Sequence[int]) -> None:
        """Replace the marks by ``indices`` (of all shown samples); ends a preset like :meth:`toggle`."""
        indices = {int(i) for i in indices}
        bad = sorted(i for i in indices if not 0 <= i < self.n_samples)
        if bad:
            listed = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
            raise ValueError(f"no samples [{listed}]: {self.n_samples} samples are shown (0..{self.n_samples - 1})")
        self._by_hand()
        self.marked = indices

    def clear(self) -> None:
        self._by_hand()
        self.marked = set()

    def _by_hand(self) -> None:
        self.preset, self.oracle = None, None
        self._forget_feature()

    def use_preset(self, name: str, *, classifier: nn.Module | None = None) -> int:
        """Label every shown sample with the oracle ``name`` (``"thick"``, ``"digit:K"``; see
        :func:`~feature_unlearning.oracles.get_oracle`); returns how many show the feature."""
        self._digits_only("presets")
        oracle = get_oracle(name, classifier=classifier)
        labels = oracle.labels(self.images)
        self.preset, self.oracle = name, oracle
        self.marked = {int(i) for i in labels.nonzero().flatten()}
        self._forget_feature()
        return len(self.marked)

    def _digits_only(self, what: str) -> None:
        shape = tuple(self.model.image_shape)
        if shape != (1, 28, 28):
            raise ValueError(
                f"{what}: only for 28x28 grey digits so far, and {self.model_name} draws "
                f"{'x'.join(map(str, shape))} images"
            )

    def counts(self) -> tuple[int, int]:
        """(marked, unmarked) among the shown samples."""
        return len(self.marked), self.n_samples - len(self.marked)

    def _forget_feature(self) -> None:
        self.feature, self.preview_z, self.preview_marked, self.example = None, None, [], None

    # ------------------------------------------------------------------------------------- feature

    def find_feature(self, *, n: int = 4000, method: str = "mean_diff", rule: str = "mean") -> Feature:
        """The feature's direction and threshold.

        With a preset, its oracle labels ``n`` fresh samples (:meth:`Feature.from_oracle`); with marks
        made by hand, the shown samples and their marks define it (:meth:`Feature.from_clicks`: a probe on
        the model's image feature extractor labels new samples, or, for a model without one, the clicks give
        the direction only and :attr:`Feature.note` says so). ``ValueError`` says what is missing.
        """
        if self.oracle is not None:
            feature = Feature.from_oracle(
                self.model, self.oracle, n=n, seed=self.seed + 10_000, method=method, rule=rule
            )
        else:
            n_pos, n_neg = self.counts()
            if n_pos == 0:
                raise ValueError("nothing is marked: click the samples that show the feature, or choose a preset")
            if n_neg == 0:
                raise ValueError("every sample is marked: leave the samples without the feature unmarked")
            feature = Feature.from_clicks(self.model, self.z, self.images, sorted(self.marked), method=method,
                                          rule=rule)
        self.feature = feature
        self.preview_z, self.preview_marked = self._pick_preview(feature)
        return feature

    @staticmethod
    def _pick_preview(feature: Feature, n_pos: int = 8, n: int = 16) -> tuple[torch.Tensor, list[int]]:
        """Latents to watch: up to ``n_pos`` that show the feature, then ones that do not (``n`` in all)."""
        c = feature.collection
        pos = c.labels.nonzero().flatten()[:n_pos]
        neg = (~c.labels).nonzero().flatten()[: n - len(pos)]
        return torch.cat([c.z[pos], c.z[neg]]), list(range(len(pos)))

    def _need_feature(self) -> Feature:
        if self.feature is None:
            raise ValueError("no feature direction yet: mark samples (or choose a preset) and find the direction first")
        return self.feature

    def traversal(self, alphas: Sequence[float] = ALPHAS, *, rows: int = 6, model: nn.Module | None = None) -> torch.Tensor:
        """z + a * d for ``rows`` watched latents (half with the feature when there are some), drawn by
        ``model`` (default: the original) -> ``(rows, len(alphas), C, H, W)``."""
        feature = self._need_feature()
        z = self._traversal_latents(rows)
        return directions.traverse(model if model is not None else self.model, z, feature.direction, alphas).cpu()

    def at_alpha(self, alpha: float, *, rows: int = 6, model: nn.Module | None = None) -> torch.Tensor:
        """The traversal latents moved by ``alpha`` along the direction: ``(rows, C, H, W)``; ``alpha`` is
        clamped to the traversal's range [ALPHAS[0], ALPHAS[-1]]."""
        alpha = min(max(float(alpha), ALPHAS[0]), ALPHAS[-1])
        return self.traversal((alpha,), rows=rows, model=model)[:, 0]

    def _traversal_latents(self, rows: int) -> torch.Tensor:
        half = min(rows // 2, len(self.preview_marked))
        return torch.cat([self.preview_z[:half], self.preview_z[len(self.preview_marked) :][: rows - half]])

    # -------------------------------------------------------------------------------------- unlearn

    def preview(self, model: nn.Module | None = None) -> torch.Tensor:
        """``model``'s (default: the original's) images of the watched latents ``(16, C, H, W)``."""
        self._need_feature()
        return render(model if model is not None else self.model, self.preview_z).cpu()

    def config(self, **overrides) -> UnlearnConfig:
        """The feature's default :class:`UnlearnConfig` (:meth:`Feature.default_config`: oracle-guided, or the
        paper's rule where the oracle scores no image) with the model's own defaults
        (:func:`~feature_unlearning.hub.unlearn_defaults`, e.g. the faces'), on the GPU when there is one, ``overrides`` applied
        (``ValueError`` when invalid; ``steps``, ``lr`` and ``alpha`` must lie in the app's ranges, see
        :func:`check_settings`)."""
        from .hub import unlearn_defaults
        from .utils import default_device

        overrides = {"device": default_device(), **{k: v for k, v in overrides.items() if v is not None}}
        if {"steps", "lr", "alpha"} <= overrides.keys():
            overrides["steps"], overrides["lr"], overrides["alpha"] = check_settings(
                overrides["steps"], overrides["lr"], overrides["alpha"]
            )
        if self.feature is not None:
            return self.feature.default_config(model=self.model_name, **overrides)
        return UnlearnConfig(**{**unlearn_defaults(self.model_name), **overrides})

    def start_run(
        self,
        config: UnlearnConfig,
        *,
        runner: Callable[..., Iterator[UnlearnProgress]] | None = None,
        compute: ComputeThread | None = None,
    ) -> Iterator[UnlearnProgress]:
        """Unlearn the feature from a copy of the model, yielding progress; the last report is ``done`` and
        the run's :class:`~feature_unlearning.result.UnlearnResult` is then :attr:`result`.

        :meth:`cancel` stops it at the next logged step, keeping the model so far. ``runner`` replaces
        :func:`unlearn_stream` by a function with its arguments ``(feature, model, config, preview_z=)`` that
        runs elsewhere (a ZeroGPU worker process): the stop event can't reach it, so a cancel closes its
        stream instead, and the last report is ``abandoned`` (no model). ``compute``: the thread to train on
        (see :func:`unlearn_stream`).
        """
        feature = self._need_feature()
        self.stop.clear()
        self.result, self.example = None, None
        if runner is None:
            stream = unlearn_stream(feature, self.model, config, preview_z=self.preview_z, stop=self.stop,
                                    compute=compute)
        else:
            stream = runner(feature, self.model, config, preview_z=self.preview_z)
        try:
            for report in stream:
                if runner is not None and self.stop.is_set() and not report.done:
                    stream.close()
                    yield UnlearnProgress(report.step, report.steps, report.elapsed, report.curves, report.preview,
                                          abandoned=True)
                    return
                if report.done:
                    self.result = UnlearnResult(self.model, report.model, report.history, feature,
                                                base_model=self.model_name)
                yield report
        except UnlearningDiverged as err:  # keep the last good model, then let the front end say what happened
            if getattr(err, "model", None) is not None and getattr(err, "history", None) is not None:
                self.result = UnlearnResult(self.model, err.model, err.history, feature, base_model=self.model_name)
            raise

    def cancel(self) -> None:
        """Stop a running :meth:`start_run` at its next logged step (or, after :meth:`queue_run`, before it starts)."""
        self.stop.set()

    def queue_run(self) -> None:
        """Note that a run was asked for and waits its turn: a :meth:`cancel` from now on is kept for it
        (see :attr:`cancelled`), so that a run cancelled while queued never starts."""
        self.stop.clear()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called since the last :meth:`queue_run` or :meth:`start_run`."""
        return self.stop.is_set()

    def samples(self, seed: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh latents from ``seed`` drawn by the original and by the unlearned model: two ``(n, C, H, W)``."""
        result = self._need_result()
        z = self.model.sample_latent(n, seed=int(seed), device="cpu")
        return render(self.model, z).cpu(), render(result.unlearned, z).cpu()

    def _need_result(self) -> UnlearnResult:
        self._need_feature()
        if self.result is None:
            raise ValueError("nothing unlearned yet: run the unlearning first")
        return self.result

    def compare(self, *, n: int = 2000, seed: int = 1) -> dict:
        """:func:`compare_result` of this workspace's run on ``n`` fresh latents."""
        return compare_result(self._need_result(), n=n, seed=seed)

    def export(self, folder: str | Path | None = None) -> Path:
        """Zip the unlearned model (safetensors, config.json, card) into ``folder`` (default: this workspace's
        temporary folder, removed by :meth:`close`); returns the zip's path."""
        result = self._need_result()
        if folder is None:
            if self.export_dir is None:
                self.export_dir = Path(tempfile.mkdtemp(prefix="feature-unlearning-"))
            folder = self.export_dir
        return result.export_zip(folder)

    def push(self, repo_id: str, token: str, *, private: bool = False) -> str:
        """Upload the unlearned model with its card to the Hub repo ``repo_id``; returns the repo URL."""
        return self._need_result().push(repo_id, token, private=private)

    def close(self) -> None:
        """Stop a running unlearning and remove the files :meth:`export` wrote to its temporary folder."""
        self.stop.set()
        if self.export_dir is not None:
            shutil.rmtree(self.export_dir, ignore_errors=True)
            self.export_dir = None


# --------------------------------------------------------------------------------- independent judges


def compare_result(result: UnlearnResult, *, n: int = 2000, seed: int = 1) -> dict:
    """:meth:`UnlearnResult.compare <feature_unlearning.result.UnlearnResult.compare>` on ``n`` latents, plus
    the shares an independent judge (:func:`independent_judge`) sees before and after, where there is one.

    Where the feature's oracle scores no image (clicks on a model without an image feature extractor),
    nothing can count the feature in new images: the report then holds only ``n`` and ``preservation``
    (SSIM and L1 on the latents below the direction's threshold, which the paper's rule leaves alone),
    and ``removed`` is absent. The report is kept in ``result.comparison`` either way.
    """
    z = result.original.sample_latent(n, seed=seed, device="cpu")
    if result.feature.image_oracle:
        report = result.compare(n=n, seed=seed)
        judge = independent_judge(result.feature)
        if judge is not None:
            before, after = render(result.original, z).cpu(), render(result.unlearned, z).cpu()
            report["judge"] = {"name": judge_name(result.feature),
                               "share_before": float(judge.labels(before).float().mean()),
                               "share_after": float(judge.labels(after).float().mean())}
        return report
    from .metrics import preservation

    before, after = render(result.original, z).cpu(), render(result.unlearned, z).cpu()
    below = directions.project(z, result.feature.direction) < result.feature.threshold
    result.comparison = {"n": n, "preservation": preservation(before[below], after[below]),
                         "n_below_threshold": int(below.sum())}
    return result.comparison


def judge_name(feature: Feature) -> str | None:
    """What grades removal without having been in the loss, for ``feature`` (``None``: nothing yet).

    Digits ``digit:K``: ``mnist-judge-resnet``, another network family trained on other digits than the
    ``mnist-classifier`` that guides unlearning; ``thick``: the skeleton stroke width, a measure computed
    another way than the oracle's (both from :mod:`feature_unlearning.judges`). Click probes and faces have none.
    """
    if feature.name.startswith("digit:"):
        return "mnist-judge-resnet (another classifier)"
    if feature.name in ("thick", "thick:0.9"):
        return "the skeleton stroke width (another stroke measure)"
    return None


def independent_judge(feature: Feature) -> Oracle | None:
    """An oracle for ``feature`` that was not in the loss (see :func:`judge_name`), or ``None``."""
    if judge_name(feature) is None:
        return None
    from . import judges

    (oracle,) = judges.judge_oracles("thick" if feature.name.startswith("thick") else feature.name).values()
    return oracle


# ----------------------------------------------------------------------------- streamed unlearning


@dataclass
class UnlearnProgress:
    """One report of :func:`unlearn_stream`: the step reached, the losses so far and a preview.

    The last report has ``done=True`` and carries the unlearned ``model`` and its ``history``; or, when a
    remote run was cancelled (see :meth:`Workspace.start_run`), ``abandoned=True`` and no model.
    """

    step: int
    steps: int
    elapsed: float
    curves: dict[str, list[float]]  # "step" and LOSS_KEYS, every log_every steps so far
    preview: torch.Tensor | None = None  # (N, C, H, W) in [-1, 1]: the preview latents, current model
    done: bool = False
    model: nn.Module | None = None
    history: History | None = None
    abandoned: bool = False

    @property
    def stopped_early(self) -> bool:
        return bool(self.history is not None and self.history.stopped_early)


def unlearn_stream(
    feature: Feature,
    model: nn.Module,
    config: UnlearnConfig | None = None,
    *,
    preview_z: torch.Tensor | None = None,
    stop: threading.Event | None = None,
    compute: ComputeThread | None = None,
) -> Iterator[UnlearnProgress]:
    """Run ``feature.unlearn(model, config)`` in a thread and yield its progress every ``log_every`` steps.

    The thread is ``compute`` when given (a server's :class:`~feature_unlearning.utils.ComputeThread`: the run
    waits for the work queued there, then trains with all its cores), else a new one.

    Reports that pile up while the consumer is busy are merged (only the newest is yielded; the curves
    hold every logged step anyway). Setting ``stop``, or closing this generator, ends training at the next
    logged step; the last report is ``done`` with the model trained so far. An exception in training is
    raised here.
    """
    cfg = config or UnlearnConfig()
    reports: queue.Queue = queue.Queue()
    halt = threading.Event()
    curves: dict[str, list[float]] = {"step": [], **{k: [] for k in LOSS_KEYS}}

    def callback(step: int, info: dict) -> bool:
        curves["step"].append(step)
        for key in LOSS_KEYS:
            curves[key].append(float(info[key]))
        preview = render(info["model"], preview_z).cpu() if preview_z is not None else None
        snapshot = {k: list(v) for k, v in curves.items()}
        reports.put(UnlearnProgress(step, info["steps"], info["elapsed"], snapshot, preview))
        return not (halt.is_set() or (stop is not None and stop.is_set()))

    def work() -> None:
        try:
            result = feature.unlearn(model, cfg, callback=callback, progress_bar=False)
            reports.put((result.unlearned, result.history))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
            reports.put(err)

    if compute is not None:
        compute.submit(work)
    else:
        threading.Thread(target=work, name="feature-unlearning", daemon=True).start()
    try:
        while True:
            item = reports.get()
            while not isinstance(item, (tuple, BaseException)):
                try:
                    newer = reports.get_nowait()
                except queue.Empty:
                    break
                item = newer
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, tuple):
                unlearned, history = item
                preview = render(unlearned, preview_z).cpu() if preview_z is not None else None
                last = history.step[-1] if history.step else 0
                yield UnlearnProgress(
                    last,
                    cfg.steps,
                    history.seconds,
                    {k: list(v) for k, v in curves.items()},
                    preview,
                    done=True,
                    model=unlearned,
                    history=history,
                )
                return
            yield item
    finally:
        halt.set()  # the consumer left (closed or failed): let the thread finish at its next logged step
