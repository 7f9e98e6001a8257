"""Load: N visitors use one real `streamlit run app.py` at once, through one headless Chromium.

Each visitor (its own browser context, so its own Streamlit session) opens Home, then
reaches every page with the sidebar's navigation links, as a person does (never by typing
a URL: the app keeps a visitor's identity in the URL and the session): on Data it uploads a
small generated zip, on Train it trains the from-scratch CNN on it, on Ideal image it renders
that run with the fewest steps the form allows, on Attack it attacks it with FGSM.

Measured: light page visits (navigation click -> the page's title drawn and the script run
ended), p50 and p95 over all visitors; each heavy action (upload, train, render, attack) from
click to result, median and max (the app may show "waiting for a turn" while heavy work
queues: that time is included, and reported); errors (a step that fails or times out, an
exception box, an error box, "Traceback" or a server path in the page's text), target 0; the
peak resident memory of the server (its process and children, sampled every 0.5 s) and its
CPU time.

The server runs with TLCORE_PUBLIC_DEMO=1, a fresh temporary TLCORE_HOME and no GPU
(CUDA_VISIBLE_DEVICES=""); it is stopped (its whole process group) and the folder removed
whatever happens. Run it through the suite, `python -m tlcore bench --only load [--quick]`
(8 visitors, quick 3; TLCORE_LOAD_VISITORS overrides, TLCORE_LOAD_APP_ROOT serves another
checkout of the app), or alone: `python -m bench.load --visitors 3`. Raw per-visitor timings
go to bench/results/<device>-<quick|full>-load-visitors.json; screenshots only on errors,
to bench/results/load-errors/.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHOTS = RESULTS / "load-errors"
MAX_SHOTS = 6

# Shared with tests/test_browser.py (bench must not import tests; tests import these).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# The script run has ended: stApp says so, and no "Running..." widget or spinner is left.
IDLE = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    return app !== null && app.getAttribute("data-test-script-state") === "notRunning"
        && app.getAttribute("data-test-connection-state") === "CONNECTED"
        && !document.querySelector("[data-testid='stStatusWidget']")
        && !document.querySelector("[data-testid='stSpinner']");
}"""

# The navigation links' names and the titles their pages draw.
TITLES = {"Home": "Transfer learning on images", "Data": "Data", "Train": "Train",
          "Runs": "Runs", "Evaluate": "Evaluate", "Ideal image": "Ideal image",
          "Attack": "Attack"}
ZIP_SOURCE = "Upload a zip of class folders"
ZIP_UPLOADER = "Zip of class folders"
BACKBONE = "Small CNN from scratch"
EPOCHS = "2"
IMAGE_SIZE = "32"
ATTACK_METHOD = "FGSM (one step)"
QUEUED = re.compile(r"waiting for a turn|place in the queue|waiting: \d+ training",
                    re.IGNORECASE)
REFUSED = re.compile(r"try again|its limit", re.IGNORECASE)  # the server's job limit
TRAIN_DONE = re.compile(r"Saved as run|Training failed|Training was cancelled|Cancelled")
LIGHT_TARGET_S = 2.0
START_TIMEOUT_S = 180
TEMP_PREFIX = "tlcore-load-"


class Limits:
    """Per-step timeouts in seconds, scaled with the number of visitors (heavy work takes
    turns, so the last visitor waits for all the others)."""

    def __init__(self, visitors: int):
        self.light = 180.0
        self.upload = 180.0
        self.train = 300.0 + 90.0 * visitors
        self.render = 180.0 + 30.0 * visitors
        self.attack = 180.0 + 30.0 * visitors


# ----------------------------------------------------------------------------- pure parts

def make_zip(path: Path, seed: int = 0, classes: int = 2, per_class: int = 12,
             size: int = 64) -> Path:
    """A zip of `classes` class folders of `per_class` PNGs (`size` px): noise with a square
    of the class's colour, different for every `seed`."""
    import numpy as np
    from PIL import Image

    colours = [(220, 40, 40), (40, 60, 220), (40, 200, 60), (230, 200, 40)]
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(classes):
            for number in range(per_class):
                pixels = rng.normal(128, 30, (size, size, 3))
                corner = rng.integers(0, size // 2, 2)
                pixels[corner[0]:corner[0] + size // 3, corner[1]:corner[1] + size // 3] = \
                    colours[index % len(colours)]
                buffer = io.BytesIO()
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "PNG")
                archive.writestr(f"class{index}/{number:02d}.png", buffer.getvalue())
    return path


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation (numpy's default); nan when
    there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def page_problems(text: str, exception_boxes: list[str], error_boxes: list[str],
                  forbidden: list[str]) -> list[str]:
    """What is wrong on a page: exception boxes, error boxes (those not inside an exception
    box), "Traceback", or a server path (`forbidden`) in its text."""
    problems = [f"exception box: {box.strip()[:300]}" for box in exception_boxes]
    problems += [f"error box: {box.strip()[:300]}" for box in error_boxes
                 if not any(box.strip() and box.strip() in e for e in exception_boxes)]
    if "Traceback" in text and not exception_boxes:
        problems.append("'Traceback' in the page text")
    for path in forbidden:
        if path and path in text:
            at = text.index(path)
            problems.append(f"server path {path!r} in the page text: "
                            f"...{text[max(0, at - 80):at + 80]}...")
    return problems


def summarize(visitors: list[dict]) -> dict:
    """Statistics over the visitors' records (see `_visitor` for their shape)."""
    light = [visit["seconds"] for record in visitors for visit in record["pages"]
             if visit.get("ok")]
    opened = [record["open_seconds"] for record in visitors
              if record.get("open_seconds") is not None]
    actions: dict[str, dict] = {}
    for name in ("upload", "train", "render", "attack"):
        done = [a for record in visitors for a in record["actions"]
                if a["name"] == name and a.get("ok")]
        seconds = [a["seconds"] for a in done]
        queued = [a.get("queued_seconds", 0.0) for a in done]
        actions[name] = {
            "count": len(seconds), "median": statistics.median(seconds) if seconds else
            float("nan"), "max": max(seconds) if seconds else float("nan"),
            "min": min(seconds) if seconds else float("nan"),
            "queued": sum(1 for q in queued if q > 0),
            "queued_max": max(queued) if queued else 0.0,
            "refused": sum(a.get("refused", 0) for record in visitors
                           for a in record["actions"] if a["name"] == name)}
    errors = [dict(error, visitor=record["visitor"]) for record in visitors
              for error in record["errors"]]
    # One failing step counts once, however many problems its page shows.
    failed_steps = sorted({(error["visitor"], error["step"]) for error in errors})
    kinds: dict[str, int] = {}
    for error in errors:
        kinds[error["kind"]] = kinds.get(error["kind"], 0) + 1
    return {"visitors": len(visitors),
            "light": {"count": len(light), "p50": percentile(light, 50),
                      "p95": percentile(light, 95), "max": max(light) if light else
                      float("nan"),
                      "slowest": sorted(((visit["seconds"], visit["page"], record["visitor"])
                                         for record in visitors for visit in record["pages"]
                                         if visit.get("ok")), reverse=True)[:3]},
            "open": {"count": len(opened), "median": statistics.median(opened) if opened
                     else float("nan"), "max": max(opened) if opened else float("nan")},
            "actions": actions, "errors": errors, "error_kinds": kinds,
            "failed_steps": [f"visitor {who}: {step}" for who, step in failed_steps]}


def load_rows(summary: dict, server: dict) -> list[dict]:
    """The suite's rows from `summarize`'s statistics and the server's measures."""
    from bench import suite

    visitors = summary["visitors"]
    cores = server.get("cpu_count") or os.cpu_count()

    def entry(case: str, ours: float, unit: str, target: float | None = None,
              note: str = "") -> dict:
        met = None if target is None else bool(ours == ours and ours <= target)
        return {**suite.row("load", case, ours, None, unit), "target": target, "met": met,
                "note": note}

    light = summary["light"]
    slowest = ", ".join(f"{page} {seconds:.1f} s (visitor {who})"
                        for seconds, page, who in light["slowest"])
    rows = [entry(f"light pages p50, {visitors} visitors", light["p50"], "s",
                  note=f"{light['count']} navigation clicks: click to title drawn and the "
                       f"script run ended; {cores} CPU cores"),
            entry(f"light pages p95, {visitors} visitors", light["p95"], "s", LIGHT_TARGET_S,
                  note=f"max {light['max']:.2f} s; slowest: {slowest}")]
    opened = summary["open"]
    rows.append(entry(f"first open of Home, {visitors} visitors at once", opened["median"],
                      "s", note=f"median; max {opened['max']:.2f} s (a fresh session each; "
                                "the server was warmed by one visit first)"))
    names = {"upload": "upload the zip: file chosen to data shown",
             "train": "train: click to 'Saved as run'",
             "render": "ideal image: click to 'Class probability'",
             "attack": "attack: click to 'Success'"}
    for name, case in names.items():
        action = summary["actions"][name]
        queue = (f"; 'waiting for a turn' seen by {action['queued']} (longest "
                 f"{action['queued_max']:.1f} s)" if action["queued"] else "")
        refused = (f"; refused by the server's job limit {action['refused']} times, retried"
                   if action["refused"] else "")
        rows.append(entry(f"{case}, median, {visitors} visitors", action["median"], "s",
                          note=f"{action['count']} of {visitors} done; min "
                               f"{action['min']:.2f} s{queue}{refused}"))
        rows.append(entry(f"{case}, max, {visitors} visitors", action["max"], "s"))
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(summary["error_kinds"].items()))
    first = "; ".join(f"visitor {e['visitor']} {e['step']}: {e['detail'][:120]}"
                      for e in summary["errors"][:3])
    log_note = (f"; server log: {server.get('log_tracebacks', 0)} tracebacks"
                if server.get("log_tracebacks") else "")
    rows.append(entry(f"errors (failed steps), {visitors} visitors",
                      float(len(summary["failed_steps"])), "steps", 0.0,
                      note=(f"problems: {kinds}; {first}" if summary["errors"] else
                                 "no failed step, exception, error box, traceback or server "
                                 "path") + log_note))
    rows.append(entry(f"peak server memory, {visitors} visitors", server.get("peak_mb", 0.0),
                      "MB", note=f"RSS of streamlit and its children, sampled every 0.5 s; "
                                 f"{server.get('start_mb', 0.0):.0f} MB after warm-up; server "
                                 f"CPU {server.get('cpu_seconds', 0.0):.0f} s over "
                                 f"{server.get('wall_seconds', 0.0):.0f} s on {cores} cores"))
    return rows


# ----------------------------------------------------------------------------- the server

def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current not in tree:
            tree.append(current)
            todo += _children(current)
    return tree


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return 0


class Sampler(threading.Thread):
    """Samples the resident memory of a process tree every `every` seconds; keeps the peak,
    and the tree's CPU ticks (per pid, so exited children are not lost)."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_kb = 0
        self.last_kb = 0
        self.ticks: dict[int, int] = {}
        self.halt = threading.Event()

    def sample(self) -> int:
        tree = process_tree(self.pid)
        total = sum(_rss_kb(pid) for pid in tree)
        for pid in tree:
            self.ticks[pid] = max(self.ticks.get(pid, 0), _cpu_ticks(pid))
        self.last_kb = total
        self.peak_kb = max(self.peak_kb, total)
        return total

    def cpu_seconds(self) -> float:
        return sum(self.ticks.values()) / os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.sample()


def _die_with_parent():
    """A preexec_fn that makes the server get SIGTERM when the benchmark dies, even by
    SIGKILL (Linux prctl PR_SET_PDEATHSIG); None elsewhere. The function is looked up
    here, before the fork, so the child only calls it."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG = 1


def _remove_stale_folders() -> None:
    """Remove the temporary folders of earlier runs whose process is gone (killed before
    it could clean up); their names hold the pid."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        match = re.match(re.escape(TEMP_PREFIX) + r"(\d+)-", folder.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            shutil.rmtree(folder, ignore_errors=True)


class _Terminated(BaseException):
    """SIGTERM arrived: unwind (past the suite's `except Exception`), so that the server is
    stopped and the folder removed."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated("terminated (SIGTERM)")


def start_server(app_root: Path, home: Path, log_path: Path, public_demo: bool = True
                 ) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port with its own TLCORE_HOME and no GPU, in its own
    process group, as a public demo or (`public_demo=False`) a host's own server; returns
    it and its base URL once its health check answers. The log is appended to."""
    port = free_port()
    environment = {**os.environ, "TLCORE_HOME": str(home), "CUDA_VISIBLE_DEVICES": ""}
    environment.pop("TLCORE_PUBLIC_DEMO", None)
    if public_demo:
        environment["TLCORE_PUBLIC_DEMO"] = "1"
    with open(log_path, "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=app_root, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent())
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}: "
                               f"{log_path.read_text(errors='replace')[-1500:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                        timeout=2) as answer:
                if answer.status == 200:
                    return server, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"streamlit did not answer its health check in "
                               f"{START_TIMEOUT_S} s: "
                               f"{log_path.read_text(errors='replace')[-1500:]}")
        time.sleep(0.25)


@contextlib.contextmanager
def serving(app_root: Path, home: Path, log_path: Path, public_demo: bool = True
            ) -> Iterator[str]:
    """`start_server` for the block: yields its base URL and stops it on the way out."""
    server, url = start_server(app_root, home, log_path, public_demo)
    try:
        yield url
    finally:
        stop_server(server)


def stop_server(server: subprocess.Popen) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL after 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            server.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


# ----------------------------------------------------------------------------- the browser

def _heading(page, title: str):
    return page.locator("[data-testid='stHeading'] h1").filter(
        has_text=re.compile(r"^\s*" + re.escape(title) + r"(\s|$)")).first


def _metric(page, label: str):
    return page.locator("[data-testid='stMetric']").filter(has_text=label).first


async def _idle(page, timeout_s: float, pause_ms: int = 0) -> None:
    if pause_ms:
        await page.wait_for_timeout(pause_ms)  # a rerun just asked for has begun
    await page.wait_for_function(IDLE, polling=100, timeout=timeout_s * 1000)


async def _wait_until(check, timeout_s: float, every_s: float = 0.2) -> None:
    """Poll the coroutine function `check` until it returns true, or raise TimeoutError."""
    deadline = time.perf_counter() + timeout_s
    while not await check():
        if time.perf_counter() > deadline:
            raise asyncio.TimeoutError(f"not done after {timeout_s:.0f} s: {check.__doc__ or ''}")
        await asyncio.sleep(every_s)


async def _problems(page, forbidden: list[str]) -> list[str]:
    exception_boxes = await page.locator("[data-testid='stException']").all_inner_texts()
    error_boxes = await page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    text = await page.locator("body").inner_text()
    return page_problems(text, exception_boxes, error_boxes, forbidden)


async def _choose(page, label: str, option) -> None:
    """Pick the option (a string, or a pattern) of the selectbox labelled `label`."""
    box = page.get_by_role("combobox", name=label, exact=True)
    await box.click()
    await page.get_by_role("option", name=option, exact=isinstance(option, str)).first.click()


async def _set_number(page, label: str, value: str, scope=None) -> None:
    """Type into a number input and leave it (Tab commits; Enter would submit a form)."""
    field = (scope or page).get_by_label(label, exact=True).filter(visible=True).first
    await field.fill(value)
    await field.press("Tab")


async def _click_radio(page, option: str) -> None:
    await page.locator("[data-testid='stRadio']").get_by_text(option, exact=True).first.click()


def _button(page, ending: str):
    """The visible button whose text ends with `ending` (an icon's name may come first)."""
    return page.get_by_role("button").filter(
        has_text=re.compile(re.escape(ending) + r"\s*$")).filter(visible=True).first


async def _pick_run(page, run_id: str, timeout_s: float) -> None:
    """Make the page's "Run" selectbox show `run_id` (its label starts with the id)."""
    box = page.get_by_role("combobox", name="Run", exact=True)
    await box.wait_for(timeout=timeout_s * 1000)
    if not (await box.input_value()).startswith(run_id):
        await _choose(page, "Run", re.compile("^" + re.escape(run_id)))
        await _idle(page, timeout_s, pause_ms=300)
    value = await box.input_value()
    if not value.startswith(run_id):
        raise RuntimeError(f"the Run picker shows {value!r}, not {run_id}")


async def _wait_outcome(page, result, timeout_s: float) -> tuple[str, float]:
    """Wait for `result`, an exception box or an error box; return which ("result",
    "exception", "error") and how long the page showed a queue message meanwhile."""
    failed = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    queued = {"seconds": 0.0}

    async def watch_queue() -> None:
        while True:
            started = time.perf_counter()
            if await page.get_by_text(QUEUED).count():
                await asyncio.sleep(1.0)
                queued["seconds"] += time.perf_counter() - started
            else:
                await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch_queue())
    try:
        await result.or_(failed.first).first.wait_for(timeout=timeout_s * 1000)
    finally:
        watcher.cancel()
        try:
            await watcher
        except (asyncio.CancelledError, Exception):
            pass
    if await result.count() and await result.first.is_visible():
        return "result", queued["seconds"]
    kind = "exception" if await page.locator("[data-testid='stException']").count() else "error"
    return kind, queued["seconds"]


async def _visitor(browser, base: str, index: int, zip_path: Path, limits: Limits,
                   forbidden: list[str], shots: list[int]) -> dict:
    """One visitor's journey; returns {"visitor", "open_seconds", "pages": [...],
    "actions": [...], "errors": [...], "run_id"}; never raises."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    record: dict = {"visitor": index, "open_seconds": None, "pages": [], "actions": [],
                    "errors": [], "run_id": None, "urls": []}
    started = time.perf_counter()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(limits.light * 1000)

    async def problem(step: str, kind: str, detail: str) -> None:
        detail = " ".join(detail.split())  # one line: it goes into a markdown table
        record["errors"].append({"step": step, "kind": kind, "detail": detail[:600],
                                 "at_seconds": round(time.perf_counter() - started, 2)})
        if len(shots) < MAX_SHOTS:
            shots.append(index)
            try:
                SHOTS.mkdir(parents=True, exist_ok=True)
                name = re.sub(r"\W+", "-", step).strip("-")
                await page.screenshot(path=str(SHOTS / f"visitor{index}-{name}.png"),
                                      full_page=False, timeout=15_000)
            except Exception:
                pass

    async def step(name: str, work, timeout_s: float) -> bool:
        """Run one step with its timeout; record a failure and what the page shows."""
        try:
            await asyncio.wait_for(work(), timeout_s + 30)
        except (PlaywrightTimeout, asyncio.TimeoutError) as error:
            await problem(name, "timeout", f"{type(error).__name__}: {error}")
            return False
        except Exception as error:
            await problem(name, "failure", f"{type(error).__name__}: {error}")
            return False
        try:
            found = await _problems(page, forbidden)
        except Exception as error:
            found = [f"could not read the page: {error}"]
        for item in found:
            await problem(name, "page", item)
        record["urls"].append(page.url)
        return not found

    async def navigate(link: str) -> None:
        began = time.perf_counter()
        await page.locator("[data-testid='stSidebarNav']").get_by_role(
            "link", name=link, exact=True).click()
        await _heading(page, TITLES[link]).wait_for(timeout=limits.light * 1000)
        await _idle(page, limits.light)
        record["pages"].append({"page": link, "ok": True,
                                "seconds": round(time.perf_counter() - began, 3),
                                "at_seconds": round(began - started, 2)})

    async def go(link: str) -> bool:
        ok = await step(f"open {link}", lambda: navigate(link), limits.light)
        if not ok and (not record["pages"] or record["pages"][-1]["page"] != link):
            record["pages"].append({"page": link, "ok": False})
        return ok

    async def open_home() -> None:
        began = time.perf_counter()
        await page.goto(base + "/", timeout=limits.light * 1000)
        await _heading(page, TITLES["Home"]).wait_for(timeout=limits.light * 1000)
        await _idle(page, limits.light)
        record["open_seconds"] = round(time.perf_counter() - began, 3)

    def action(name: str) -> dict:
        entry = {"name": name, "ok": False, "refused": 0, "queued_seconds": 0.0}
        record["actions"].append(entry)
        return entry

    async def upload() -> None:
        entry = action("upload")
        await _click_radio(page, ZIP_SOURCE)
        await _idle(page, limits.light, pause_ms=300)
        uploader = page.locator("[data-testid='stFileUploader']").filter(
            has_text=ZIP_UPLOADER).first
        subheadings = page.locator("[data-testid='stHeading'] h3")
        before = await subheadings.all_inner_texts()
        classes = _metric(page, "Classes").locator("[data-testid='stMetricValue']")
        began = time.perf_counter()
        await uploader.locator("input[type='file']").set_input_files(str(zip_path))

        async def shown() -> bool:  # another data set's name, with the zip's 2 classes
            return (await subheadings.all_inner_texts() != before and await classes.count()
                    and (await classes.first.inner_text()).strip() == "2")

        await _wait_until(shown, limits.upload)
        await _idle(page, limits.upload)
        entry.update(ok=True, seconds=round(time.perf_counter() - began, 3),
                     at_seconds=round(began - started, 2))

    async def train() -> None:
        entry = action("train")
        data = page.get_by_text(re.compile(r"^Data: ")).first
        if not re.search(r"\b2 classes\b", await data.inner_text()):
            raise RuntimeError(f"not the uploaded data set: {await data.inner_text()!r}")
        await _choose(page, "Backbone", BACKBONE)
        await _idle(page, limits.light, pause_ms=500)
        backbone = page.get_by_role("combobox", name="Backbone", exact=True)
        if await backbone.input_value() != BACKBONE:
            raise RuntimeError(f"the Backbone picker shows {await backbone.input_value()!r}")
        for label, value in (("Epochs", EPOCHS), ("Image size (px)", IMAGE_SIZE)):
            await _set_number(page, label, value)
            field = page.get_by_label(label, exact=True).filter(visible=True).first
            if await field.input_value() != value:
                raise RuntimeError(f"{label} shows {await field.input_value()!r}, not {value}")
        began = time.perf_counter()
        deadline = began + limits.train
        outcome = page.get_by_text(TRAIN_DONE).first
        errors = page.locator("[data-testid='stAlertContentError']")
        while True:
            await _button(page, "Train").click()
            # Let the click's script run end before reading the page: a refusal from the
            # previous try stays on screen (stale) until then. No job of this visitor runs
            # yet, so no progress fragment keeps the app busy.
            await _idle(page, limits.light, pause_ms=500)
            text = " ".join(await errors.all_inner_texts())
            if REFUSED.search(text) and not await outcome.count():
                if time.perf_counter() > deadline - 10:
                    raise RuntimeError(f"still refused at the time limit: {text[:300]}")
                entry["refused"] += 1
                await page.wait_for_timeout(5000)
                continue
            break
        kind, queued = await _wait_outcome(page, outcome,
                                           max(5.0, deadline - time.perf_counter()))
        entry["queued_seconds"] += queued
        if kind != "result":
            text = " ".join(await errors.all_inner_texts())
            raise RuntimeError(f"{kind} box instead of a training: {text[:300]}")
        text = await outcome.inner_text()
        if "Saved as run" not in text:
            raise RuntimeError(f"training ended without a run: {text[:300]}")
        seconds = time.perf_counter() - began
        record["run_id"] = re.search(r"Saved as run\s+(\S+)", text).group(1)
        await _idle(page, limits.light, pause_ms=300)
        entry.update(ok=True, seconds=round(seconds, 3), at_seconds=round(began - started, 2))

    async def heavy(name: str, prepare, button: str, result_label: str,
                    timeout_s: float) -> None:
        entry = action(name)
        await _pick_run(page, record["run_id"], limits.light)
        await prepare()
        began = time.perf_counter()
        await _button(page, button).click()
        kind, queued = await _wait_outcome(page, _metric(page, result_label), timeout_s)
        entry["queued_seconds"] = queued
        if kind != "result":
            raise RuntimeError(f"{kind} box instead of the '{result_label}' metric")
        seconds = time.perf_counter() - began
        await _idle(page, timeout_s, pause_ms=300)
        entry.update(ok=True, seconds=round(seconds, 3), at_seconds=round(began - started, 2))

    async def few_steps() -> None:
        steps = page.get_by_label("Steps", exact=True).filter(visible=True).first
        await steps.wait_for()
        lowest = str(int(float(await steps.get_attribute("min") or "5")))
        await _set_number(page, "Steps", lowest)
        record["render_steps"] = await steps.input_value()

    async def fgsm() -> None:
        await page.get_by_text("True class:").first.wait_for()
        await _click_radio(page, ATTACK_METHOD)
        await _idle(page, limits.light, pause_ms=300)

    try:
        if await step("open Home", open_home, limits.light):
            for link in ("Data", "Train", "Runs", "Evaluate", "Ideal image", "Attack", "Home"):
                if not await go(link):
                    continue
                if link == "Data":
                    await step("upload the zip", upload, limits.upload + limits.light)
                elif link == "Train":
                    await step("train", train, limits.train + 2 * limits.light)
                elif link == "Ideal image" and record["run_id"]:
                    await step("render", lambda: heavy("render", few_steps, "Render",
                                                       "Class probability", limits.render),
                               limits.render + 2 * limits.light)
                elif link == "Attack" and record["run_id"]:
                    await step("attack", lambda: heavy("attack", fgsm, "Attack", "Success",
                                                       limits.attack),
                               limits.attack + 2 * limits.light)
    except Exception as error:  # never lose the other visitors' records
        await problem("journey", "failure", f"{type(error).__name__}: {error}")
    finally:
        record["seconds"] = round(time.perf_counter() - started, 2)
        try:
            await context.close()
        except Exception:
            pass
    return record


async def _drive(base: str, visitors: int, zips: list[Path], limits: Limits,
                 forbidden: list[str], on_warm) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                   args=CHROMIUM_ARGS)
        try:
            # One untimed visit first: the first script run imports TensorFlow.
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(base + "/", timeout=START_TIMEOUT_S * 1000)
            await _heading(page, TITLES["Home"]).wait_for(timeout=START_TIMEOUT_S * 1000)
            await _idle(page, START_TIMEOUT_S)
            await context.close()
            on_warm()
            shots: list[int] = []
            return list(await asyncio.gather(*(
                _visitor(browser, base, index, zips[index], limits, forbidden, shots)
                for index in range(visitors))))
        finally:
            await browser.close()


def missing() -> str | None:
    """Why the load benchmark cannot run here, or None."""
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def measure(visitors: int, app_root: Path = ROOT) -> tuple[dict, dict, list[dict]]:
    """Serve the app, drive `visitors` visitors, stop it; (summary, server, records)."""
    for old in SHOTS.glob("visitor*.png"):  # the last run's error screenshots
        old.unlink()
    _remove_stale_folders()
    folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    home = folder / "home"
    zips = folder / "zips"
    zips.mkdir(parents=True)
    paths = [make_zip(zips / f"load-visitor-{index}.zip", seed=index)
             for index in range(visitors)]
    log_path = folder / "streamlit.log"
    server_info: dict = {"cpu_count": os.cpu_count(), "app_root": str(app_root)}
    server = sampler = None
    try:
        began = time.perf_counter()
        server, base = start_server(app_root, home, log_path)
        server_info["start_seconds"] = round(time.perf_counter() - began, 2)
        sampler = Sampler(server.pid)
        sampler.start()
        marks: dict = {}

        def on_warm() -> None:
            marks["start_kb"] = sampler.sample()
            marks["cpu"] = sampler.cpu_seconds()
            marks["time"] = time.perf_counter()

        forbidden = sorted({str(home), str(folder), str(app_root), str(ROOT)})
        records = asyncio.run(_drive(base, visitors, paths, Limits(visitors), forbidden,
                                     on_warm))
        sampler.sample()
        server_info.update(
            peak_mb=round(sampler.peak_kb / 1024, 1),
            start_mb=round(marks.get("start_kb", 0) / 1024, 1),
            end_mb=round(sampler.last_kb / 1024, 1),
            cpu_seconds=round(sampler.cpu_seconds() - marks.get("cpu", 0.0), 1),
            wall_seconds=round(time.perf_counter() - marks.get("time", began), 1))
    finally:
        if sampler is not None:
            sampler.halt.set()
        if server is not None:
            stop_server(server)
        log = log_path.read_text(errors="replace") if log_path.is_file() else ""
        server_info["log_tracebacks"] = log.count("Traceback")
        if "Traceback" in log:
            server_info["log_tail"] = log[-4000:]
        shutil.rmtree(folder, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return summarize(records), server_info, records


def device() -> str:
    """The device part of the suite's file names (the server runs without a GPU)."""
    return f"cpu-{os.cpu_count()}-{platform.machine()}"


def run(quick: bool, visitors: int | None = None, app_root: Path | None = None) -> list[dict]:
    """The benchmark: rows for the suite; the raw records go to bench/results/."""
    reason = missing()
    if reason is not None:
        from bench import suite

        return [{**suite.row("load", "skipped", float("nan"), None, ""), "note": reason}]
    visitors = visitors or int(os.environ.get("TLCORE_LOAD_VISITORS") or (3 if quick else 8))
    app_root = Path(app_root or os.environ.get("TLCORE_LOAD_APP_ROOT") or ROOT).resolve()
    began = time.perf_counter()
    summary, server, records = measure(visitors, app_root)
    rows = load_rows(summary, server)
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"{device()}-{'quick' if quick else 'full'}-load-visitors.json"
    raw.write_text(json.dumps({"visitors": visitors, "quick": quick, "server": server,
                               "summary": summary, "records": records,
                               "seconds": round(time.perf_counter() - began, 1),
                               "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1,
                              default=str))
    print(f"# load: raw timings in {raw}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--app-root", type=Path, default=None,
                        help="the checkout whose app.py is served (default: this one)")
    arguments = parser.parse_args()
    from bench import suite

    print(suite.markdown(run(arguments.quick, arguments.visitors, arguments.app_root)))


if __name__ == "__main__":
    main()
