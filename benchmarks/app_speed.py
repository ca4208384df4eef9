"""How fast the app answers, as a user meets it: ``python -m benchmarks.app_speed``.

Starts ``python app.py`` in a subprocess (analytics off, offline), measures the time until the page answers,
then drives it with gradio_client: a new sample grid ("more samples"), labelling (digits: with a preset; faces:
samples 5 and 8 of the first page, which wear glasses, marked by number), the direction, a traversal update,
and optionally one unlearning run with the model's default settings (``--unlearn``). Prints a table and writes
benchmarks/results/app_speed.md (``--model digiface-dcgan64``: app_speed_faces.md) with the machine.

    python -m benchmarks.app_speed --unlearn
    python -m benchmarks.app_speed --model digiface-dcgan64 --unlearn --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from feature_unlearning.utils import machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the app did not answer at {url} within {timeout:.0f} s")


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--unlearn", action="store_true", help="also time one unlearning run with the default steps")
    parser.add_argument("--model", default="mnist-dcgan", choices=["mnist-dcgan", "digiface-dcgan64"])
    args = parser.parse_args(argv)

    from gradio_client import Client

    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GRADIO_SERVER_PORT=str(args.port),
               FEATURE_UNLEARNING_PROGRESS="0")
    url = f"http://127.0.0.1:{args.port}/"
    start = time.perf_counter()
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_ready(url)
        ready = time.perf_counter() - start
        client = Client(url, verbose=False, analytics_enabled=False)
        rows = [("page ready after `python app.py`", ready)]
        rows.append((f"load {args.model}", timed(lambda: client.predict(None, args.model, api_name="/load_model"), 1)))
        if args.model == "mnist-dcgan":
            rows.append(("new sample grid (more samples)",
                         timed(lambda: client.predict(api_name="/more_samples"), args.repeats)))
            rows.append(("label with a preset (thick)", timed(lambda: client.predict("thick", api_name="/use_preset"), 1)))
        else:  # the first page again (more samples adds pages), its two faces with glasses marked
            rows.append(("mark samples 5 and 8 by number", timed(lambda: client.predict("5, 8", api_name="/set_marks"), 1)))
        rows.append(("direction (strips + histogram)", timed(lambda: client.predict(0, api_name="/find_direction"), 1)))
        rows.append(("traversal slider update", timed(lambda: client.predict(1.5, api_name="/traverse"), args.repeats)))
        if args.unlearn:
            from feature_unlearning.hub import unlearn_defaults
            from feature_unlearning.unlearn import UnlearnConfig

            d = UnlearnConfig(**unlearn_defaults(args.model))
            rows.append((f"unlearning, default {d.steps} steps of {d.batch_size}", timed(
                lambda: client.predict(d.steps, d.lr, d.alpha, 0, api_name="/unlearn"), 1)))  # 0: the slider
    finally:
        app.terminate()
        app.wait(timeout=30)
    table = "| step | seconds (median) |\n|---|---|\n" + "\n".join(f"| {name} | {s:.2f} |" for name, s in rows)
    cmd = "python -m benchmarks.app_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (f"# App speed\n\nCommand: `{cmd.strip()}`\n\nMachine: {machine_info()}\n\n"
            f"Model `{args.model}`; repeated steps: median of {args.repeats}.\n\n{table}\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / ("app_speed.md" if args.model == "mnist-dcgan" else "app_speed_faces.md")).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
