"""The app in a real browser: Playwright drives Debian's Chromium through the whole flow.

Clicks samples in the grid (and checks their amber frames), labels with a preset, finds the direction,
drags the slider, runs a short unlearning, compares and exports, and checks that the page never talked
to anything but localhost and threw no script errors. Screenshots go to pytest's tmp folder; with
``FEATURE_UNLEARNING_SCREENSHOTS=DIR`` (e.g. ``docs/img``) they are also written there.

    FEATURE_UNLEARNING_SCREENSHOTS=docs/img FEATURE_UNLEARNING_APP_STEPS=400 pytest -m browser tests/test_app_browser.py

(the second variable runs the default 400 unlearning steps instead of the test's quick 40).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
MODEL = os.environ.get("FEATURE_UNLEARNING_APP_MODEL", "mnist-dcgan")
STEPS = int(os.environ.get("FEATURE_UNLEARNING_APP_STEPS", "40"))  # the README screenshots: the default, 400
RUNNING = re.compile(r"^Step \d+ of \d+ · ")  # a progress report while unlearning

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def url():
    pytest.importorskip("playwright")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sys.path.insert(0, str(ROOT))
    try:
        app = importlib.import_module("app")
    finally:
        sys.path.remove(str(ROOT))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    compute = app._compute_thread(app.Settings.read())  # as `python app.py` runs it (handlers on one thread)
    demo = app.build_demo(default_model=MODEL, collect_n=2000, compare_n=1000, compute=compute)
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    if compute is not None:
        compute.close()


@pytest.fixture
def page(url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        pg = _open(browser, url)
        pg.browser = browser
        yield pg
        browser.close()


def _open(browser, url, viewport=None):
    """A page in a context of its own (a separate Gradio session), watched for outside requests and errors."""
    pg = browser.new_context(viewport=viewport or {"width": 1366, "height": 900}).new_page()
    pg.outside, pg.errors = [], []
    pg.on("request", lambda r: _note_outside(pg, r.url))
    pg.on("pageerror", lambda err: pg.errors.append(str(err)))
    pg.goto(url)
    return pg


def _choose(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option).click()


def _note_outside(pg, address: str) -> None:
    parsed = urlparse(address)
    if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in ("127.0.0.1", "localhost"):
        pg.outside.append(address)


class Shots:
    """Screenshots of parts of the page, into tmp_path and, when asked, into a docs folder."""

    def __init__(self, page, folder: Path):
        self.page, self.folder = page, folder
        extra = os.environ.get("FEATURE_UNLEARNING_SCREENSHOTS")
        self.extra = Path(extra) if extra else None

    def __call__(self, name: str, first: str | None = None, *last: str) -> Path:
        """The whole page, or the band from ``first``'s top to the lowest bottom of the ``last`` elements."""
        path = self.folder / f"{name}.png"
        if first is None:
            self.page.screenshot(path=path, full_page=True)
        else:
            top = self.page.locator(first).first.bounding_box()
            bottoms = [self.page.locator(sel).first.bounding_box() for sel in last]
            scroll = self.page.evaluate("() => window.scrollY")
            y = top["y"] + scroll - 8
            height = max(b["y"] + b["height"] for b in bottoms) + scroll + 8 - y
            width = self.page.evaluate("() => document.documentElement.scrollWidth")
            self.page.screenshot(path=path, full_page=True, clip={"x": 0, "y": y, "width": width, "height": height})
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.extra / path.name)
        return path


def _tile_centre(page, index: int, nrow: int = 8, cell: int = 120) -> tuple[float, float]:
    page.locator("#sample-grid img").scroll_into_view_if_needed()
    # after a click the grid's image is replaced; until the new one has loaded its natural size reads 0
    page.wait_for_function(
        "() => { const i = document.querySelector('#sample-grid img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    box = page.locator("#sample-grid img").bounding_box()
    natural = page.evaluate(
        "() => { const i = document.querySelector('#sample-grid img'); return [i.naturalWidth, i.naturalHeight]; }"
    )
    r, c = divmod(index, nrow)
    kx, ky = box["width"] / natural[0], box["height"] / natural[1]
    return box["x"] + (c + 0.5) * cell * kx, box["y"] + (r + 0.5) * cell * ky


def _framed(page, indices, nrow: int = 8, cell: int = 120) -> list[int]:
    """Which of ``indices`` show the amber frame in the grid as the browser draws it."""
    from io import BytesIO

    from PIL import Image

    img = page.locator("#sample-grid img")
    pixels = np.asarray(Image.open(BytesIO(img.screenshot())).convert("RGB")).astype(int)
    natural = page.evaluate("() => document.querySelector('#sample-grid img').naturalWidth")
    k = pixels.shape[1] / natural
    out = []
    for i in indices:
        r, c = divmod(i, nrow)
        y, x = int((r * cell + cell // 2) * k), int((c * cell + 1.5) * k)  # the middle of the tile's left frame
        red, green, blue = pixels[y, x]
        if red > 200 and 120 < green < 210 and blue < 90:
            out.append(i)
    return out


def _wait_text(page, selector: str, text: str | re.Pattern, timeout: float = 60_000) -> str:
    """Wait until ``selector`` shows ``text`` (a case-insensitive substring, or a regex); return its text."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.locator(selector).get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    except PlaywrightTimeout:  # say what the page showed instead: a flaky wait is then diagnosable from the log
        shown = page.locator(selector).inner_text(timeout=5_000) if page.locator(selector).count() else "(absent)"
        raise AssertionError(f"{selector} did not show {text!r} within {timeout / 1000:.0f} s; it shows {shown!r}") from None
    return page.locator(selector).inner_text()


def test_clicking_through_the_whole_flow(page, tmp_path):
    shot = Shots(page, tmp_path)
    _wait_text(page, "#model-status", "Loaded")
    page.locator("#sample-grid img").wait_for()
    _wait_text(page, "#counts", "0 with the feature")
    shot("app-01-model-and-samples", "body", "#feature-status")

    for i in (1, 11, 21):  # mark three samples, then unmark one of them
        page.mouse.click(*_tile_centre(page, i))
        _wait_text(page, "#feature-status", f"Marked sample {i}")
    assert "3 with the feature" in page.locator("#counts").inner_text()
    assert _framed(page, [1, 11, 21, 0, 2]) == [1, 11, 21]
    page.mouse.click(*_tile_centre(page, 11))
    _wait_text(page, "#feature-status", "Unmarked sample 11")
    assert "2 with the feature" in page.locator("#counts").inner_text()
    assert _framed(page, [1, 11, 21]) == [1, 21]
    spots = {i: _tile_centre(page, i) for i in (5, 6, 7)}  # the grid keeps its size while it re-renders
    for i in (5, 6, 6, 7):  # quick clicks (a person's pace, 0.15 s apart), without waiting for the page: none is lost
        page.mouse.click(*spots[i])
        page.wait_for_timeout(150)
    _wait_text(page, "#counts", "4 with the feature")
    _wait_text(page, "#feature-status", "Marked sample 7")
    assert _framed(page, [1, 5, 6, 7, 21]) == [1, 5, 7, 21]
    page.get_by_text("Mark by number").click()  # the accordion: the same marks as numbers
    assert page.locator("#marks textarea").input_value() == "1, 5, 7, 21"
    shot("app-02-marked-by-hand", "#sample-grid", "#feature-status")

    page.get_by_role("button", name="More samples").click()
    _wait_text(page, "#counts", "page 2 of 2 (64 samples drawn)")
    assert _framed(page, [1, 21]) == []  # page 2; the marks stay on page 1
    page.get_by_role("button", name="◀ Page").click()
    _wait_text(page, "#counts", "page 1 of 2")
    assert _framed(page, [1, 11, 21]) == [1, 21]

    _choose(page, "#preset", "thick strokes")  # choosing a preset applies it: no second button
    _wait_text(page, "#counts", "labelled by the preset thick strokes")
    shot("app-03-feature", "#sample-grid", "#feature-status")

    page.get_by_role("button", name="Find the direction").click()
    _wait_text(page, "#direction-status", "Direction found")
    page.locator("#traversal img").wait_for()
    before = page.locator("#live img").get_attribute("src")
    slider = page.locator("#alpha input[type=range]")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.92, box["y"] + box["height"] / 2, steps=8)
    page.wait_for_function(  # the picture follows while the button is still held
        "before => document.querySelector('#live img') && document.querySelector('#live img').src !== before",
        arg=before,
    )
    _wait_text(page, "#live-caption", "moved by +")
    page.mouse.up()
    slider.focus()  # keys move it too, and the caption follows
    slider.press("Home")
    _wait_text(page, "#live-caption", "moved by -3.00")
    slider.press("ArrowRight")
    _wait_text(page, "#live-caption", "moved by -2.75")
    shot("app-04-direction", "#direction-status", "#live", "#traversal", "#histogram")

    steps = page.get_by_label("Steps")
    steps.fill(str(STEPS))
    steps.press("Tab")
    page.get_by_role("button", name="Run unlearning").click()
    _wait_text(page, "#run-status", RUNNING)
    _wait_text(page, "#run-status", f"Unlearned in {STEPS} steps", timeout=180_000)
    page.locator("#preview img").wait_for()
    shot("app-05-unlearn", "#run-status", "#preview", "#losses")

    page.get_by_role("button", name="Compare original and unlearned").click()
    status = _wait_text(page, "#compare-status", "fresh samples", timeout=120_000)
    assert "the feature went from" in status
    page.locator("#compare-after img").wait_for()
    page.get_by_role("button", name="New samples").click()
    _wait_text(page, "#samples-status", "seed 1")
    page.get_by_role("button", name="Export the unlearned model (.zip)").click()
    _wait_text(page, "#export-status", "Packed")
    page.get_by_text(".zip").first.wait_for()
    page.get_by_text("Details: every number behind the verdict").click()
    page.locator("#details-table").wait_for()
    shot("app-06-compare", "#compare-status", "#export-status")  # the comparison of the full run above
    shot("app-07-whole-page")

    steps.fill("5000")  # a long run, cancelled: the model so far is kept
    steps.press("Tab")
    page.get_by_role("button", name="Run unlearning").click()
    _wait_text(page, "#run-status", RUNNING)
    shot("app-05b-unlearning-running", "#run-status", "#preview", "#losses")
    page.get_by_role("button", name="Cancel").click()
    _wait_text(page, "#run-status", "Stopped at step")
    assert page.get_by_role("button", name="Run unlearning").is_enabled()
    assert not page.get_by_role("button", name="Cancel").is_enabled()

    assert page.errors == [], page.errors
    assert page.outside == [], f"the page reached beyond localhost: {page.outside}"


def test_bad_input_shows_a_message_in_the_page(page):
    _wait_text(page, "#model-status", "Loaded")
    page.get_by_role("button", name="Find the direction").click()  # nothing marked yet
    _wait_text(page, "#direction-status", "nothing is marked")
    page.get_by_text("nothing is marked").first.wait_for()  # the toast as well as the status line
    page.get_by_label("…or a Hub repo id / local folder (used when filled in)").fill("/no/such/folder")
    page.get_by_role("button", name="Load").click()
    _wait_text(page, "#model-status", "unknown model '/no/such/folder'")
    assert page.errors == []


def test_bad_settings_are_refused_and_toasts_do_not_pile_up(page):
    _wait_text(page, "#model-status", "Loaded")
    _choose(page, "#preset", "thick strokes")
    _wait_text(page, "#counts", "labelled by the preset")
    page.get_by_role("button", name="Find the direction").click()
    _wait_text(page, "#direction-status", "Direction found", timeout=120_000)
    for selector, value, message in [
        ("#lr input", "1e9", "the learning rate must be between"),
        ("#steps input", "100000000", "the steps must be between 1 and 5000"),
        ("#steps input", "2.5", "the steps must be a whole number"),
    ]:
        page.locator("#lr input").fill("0.0003")
        page.locator("#steps input").fill("40")
        page.locator(selector).fill(value)
        page.locator(selector).press("Tab")
        page.get_by_role("button", name="Run unlearning").click()
        _wait_text(page, "#run-status", message)
    assert page.locator(".toast-body:visible").count() <= 1  # each new toast replaced the last
    page.get_by_text("Mark by number").click()
    box = page.locator("#marks textarea")
    box.wait_for(state="visible")
    # in CI the click twice carried an empty box ("0 samples marked."); probably the accordion's contents mount when
    # it first opens and the box then takes its value from the page, resetting text typed in that instant (not
    # proven): let it settle, and check the box before clicking
    page.wait_for_timeout(500)
    box.fill("5-2")
    box.press("Tab")  # as for the settings above: the value is committed before the click
    assert box.input_value() == "5-2"
    page.get_by_role("button", name="Set marks").click()
    _wait_text(page, "#feature-status", "runs backwards")
    assert "labelled by the preset" in page.locator("#counts").inner_text()  # the marks were kept
    assert page.errors == []


def test_a_second_user_sees_the_queue_and_cannot_press_run_twice(page, url):
    other = _open(page.browser, url)
    for pg in (page, other):
        _wait_text(pg, "#model-status", "Loaded")
        _choose(pg, "#preset", "thick strokes")
        _wait_text(pg, "#counts", "labelled by the preset")
        pg.get_by_role("button", name="Find the direction").click()
    for pg in (page, other):
        _wait_text(pg, "#direction-status", "Direction found", timeout=120_000)
        pg.locator("#steps input").fill("5000")
        pg.locator("#steps input").press("Tab")
    page.get_by_role("button", name="Run unlearning").click()
    _wait_text(page, "#run-status", RUNNING)
    other.get_by_role("button", name="Run unlearning").click()
    status = _wait_text(other, "#run-status", "Waiting for its turn: 1 run of other people go first")
    assert not other.get_by_role("button", name="Run unlearning").is_enabled()  # no second press while queued
    assert other.get_by_role("button", name="Cancel").is_enabled()
    box = other.locator("#run-status").bounding_box()
    assert 0 <= box["y"] < 900, "the run's status is scrolled into view"
    page.get_by_role("button", name="Cancel").click()
    _wait_text(page, "#run-status", "Stopped at step")
    _wait_text(other, "#run-status", RUNNING, timeout=120_000)  # the queued run starts by itself
    other.get_by_role("button", name="Cancel").click()
    _wait_text(other, "#run-status", "Stopped at step")
    assert other.get_by_role("button", name="Run unlearning").is_enabled()


def test_phone_layout_keeps_every_number_on_screen(page, url, tmp_path):
    phone = _open(page.browser, url, viewport={"width": 390, "height": 844})
    _wait_text(phone, "#model-status", "Loaded")
    _choose(phone, "#preset", "thick strokes")
    _wait_text(phone, "#counts", "labelled by the preset")
    phone.get_by_role("button", name="Find the direction").click()
    _wait_text(phone, "#direction-status", "Direction found", timeout=120_000)
    phone.locator("#steps input").fill("3")
    phone.get_by_role("button", name="Run unlearning").click()
    _wait_text(phone, "#run-status", "Unlearned in 3 steps", timeout=180_000)
    phone.get_by_role("button", name="Compare original and unlearned").click()
    _wait_text(phone, "#compare-status", "Removed", timeout=120_000)
    phone.get_by_text("Details: every number behind the verdict").click()
    table = phone.locator("#details-table")
    table.wait_for()
    box = table.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box  # no number cut off at the right
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    Shots(phone, tmp_path)("app-phone-compare", "#compare-status", "#details-table")
    assert phone.errors == []


@pytest.mark.skipif(importlib.util.find_spec("gan_face_generate") is None, reason="pip install gan-face-generate")
def test_faces_are_big_enough_to_judge_and_their_terms_are_shown(page, tmp_path):
    _wait_text(page, "#model-status", "Loaded")
    _choose(page, "#model-pick", "digiface-dcgan64 · installed from the pip package gan-face-generate")
    _wait_text(page, "#model-status", "Loaded digiface-dcgan64", timeout=120_000)
    assert "non-commercial research" in page.locator("#model-terms").inner_text()
    page.wait_for_function("() => document.querySelector('#sample-grid img')?.naturalWidth === 8 * 136")
    width = page.locator("#sample-grid img").bounding_box()["width"]
    assert width / 8 - 8 >= 96, f"faces drawn {width / 8 - 8:.0f} px wide"
    assert not page.locator("#preset input").is_enabled()  # presets are for digits
    # samples 5 and 8 of the default page wear glasses (the screenshot shows what a user would mark)
    page.mouse.click(*_tile_centre(page, 5, cell=136))
    _wait_text(page, "#feature-status", "Marked sample 5")
    page.mouse.click(*_tile_centre(page, 8, cell=136))
    _wait_text(page, "#feature-status", "Marked sample 8")
    assert _framed(page, [4, 5, 7, 8, 9], cell=136) == [5, 8]
    Shots(page, tmp_path)("app-08-faces", "#model-status", "#feature-status")
    assert page.errors == []


def test_a_finished_example_opens_at_once(page, tmp_path):
    shots = Shots(page, tmp_path)
    _wait_text(page, "#model-status", "Loaded")
    _choose(page, "#example-pick", re.compile(r"^Digits without thick strokes"))
    verdict = _wait_text(page, "#compare-status", "On 2000 fresh samples", timeout=30_000)
    assert "**" not in verdict and "Removed:" in verdict and "skeleton stroke width" in verdict
    assert "Opened Digits without thick strokes" in page.locator("#example-status").inner_text()
    assert "Finished example: unlearned in 400 steps" in page.locator("#run-status").inner_text()
    for picture in ("#sample-grid", "#traversal", "#preview", "#compare-before", "#compare-after", "#fresh-samples"):
        page.locator(picture).scroll_into_view_if_needed()  # the pictures load lazily, when on screen
        page.locator(f"{picture} img").first.wait_for(state="visible", timeout=10_000)
    assert page.locator("#steps input").input_value() == "400"
    shots("app-00-example", "#example-status", "#compare-diff")
    # the example is a result like any other: new samples redraw original and unlearned
    page.get_by_role("button", name="New samples").click()
    _wait_text(page, "#samples-status", "seed 1")
    assert not page.errors and not page.outside, (page.errors, page.outside)


def test_a_page_closed_while_waiting_no_longer_counts_in_the_queue(page, url):
    others = [_open(page.browser, url), _open(page.browser, url)]
    for pg in (page, *others):
        _wait_text(pg, "#model-status", "Loaded")
        _choose(pg, "#example-pick", re.compile(r"^Digits without thick strokes"))
        _wait_text(pg, "#compare-status", "On 2000 fresh samples", timeout=60_000)
        pg.locator("#steps input").fill("5000")
        pg.locator("#steps input").press("Tab")
    page.get_by_role("button", name="Run unlearning").click()
    _wait_text(page, "#run-status", RUNNING)
    gone, last = others
    gone.get_by_role("button", name="Run unlearning").click()
    _wait_text(gone, "#run-status", "Waiting for its turn: 1 run")
    gone.context.close()  # the second person leaves while waiting
    last.wait_for_timeout(3000)  # the server hears of it when the page's heartbeat connection drops
    last.get_by_role("button", name="Run unlearning").click()
    status = _wait_text(last, "#run-status", "Waiting for its turn")
    assert "1 run of other people go first" in status, status
    last.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Cancel").click()
    _wait_text(page, "#run-status", "Stopped at step")
