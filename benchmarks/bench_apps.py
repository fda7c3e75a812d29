"""Benchmark: the published apps, ``salesplan serve`` against ``voila notebooks/`` as served before.

Both servers run on this machine and are driven by Debian's headless chromium
(Playwright); every request to another host is aborted. Measured:

- ``open``: time from the request to an interactive page for every app, one
  page at a time (interactive: the load event fired, the cells are shown and,
  where the page has widgets, they are drawn). ``salesplan serve`` is measured
  with its pool ready (it waits for ``/salesplan/api/health``), as a visitor
  meets it on a server that is not overloaded. Goal: median <= 2 s per app.
- ``concurrent``: 10 sessions of the overview opened at once; p50/p90 of their
  times to interactive. ``salesplan serve`` runs with the repository's config
  (pool of 1 per app) and with ``--overview-pool`` kernels for the overview
  (``kernel_pools_config``, the setting a team would raise). Goal: p90 <= 5 s.
- ``round_trip``: choosing a region in the overview's dropdown until the KPI
  shows the region's value (control change -> updated output). Goal: median <= 150 ms.
- ``memory``: RSS of the server and of each kernel with one overview session
  open; then ``--cycles`` open/close cycles of a small widget notebook (a tab
  opened, drawn and closed as a browser closes it) and the kernels and
  server RSS afterwards: with ``salesplan serve`` the kernels go back to the
  pool; with plain voila they pile up when the page's close request is refused.

The machine is shared (2 cores, other jobs running): the load average is saved
with the numbers, which are noisy. Not run by the tests.

Also ``sessions``: 10 overview sessions at once without a browser (page, kernel
websocket, every widget's state), the server's share of an interactive page.

Run: ``python benchmarks/bench_apps.py [--cycles 100] [--voila-cycles 40] [--overview-pool 10]``;
writes ``benchmarks/results/apps.json`` and ``apps.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".state"
RESULTS = ROOT / "benchmarks" / "results"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OVERVIEW = "00_overview.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 240_000
LIGHT_APP = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Cycle\n\nA widget page opened and closed."},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import ipywidgets as w\nw.IntText(value=3, description='n')"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


#: The pool sized for a burst refills after it: a refill runs the notebook again (seconds of CPU per
#: kernel), which on this machine would compete with the browser drawing the ten pages.
LATE_REFILL = "c.VoilaKernelManager.fill_delay = 30\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(JUPYTER_CONFIG_DIR=str(STATE / "jupyter" / "config"), JUPYTER_DATA_DIR=str(STATE / "jupyter" / "data"),
               JUPYTER_RUNTIME_DIR=str(STATE / "jupyter" / "runtime"), IPYTHONDIR=str(STATE / "ipython"),
               MPLCONFIGDIR=str(STATE / "matplotlib"), JUPYTER_PLATFORM_DIRS="1", PYTHONHASHSEED="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for name in ("SALESPLAN_DATA", "SALESPLAN_TOKEN", "SALESPLAN_LANG"):
        env.pop(name, None)
    return env


class Server:
    def __init__(self, kind: str, folder: Path, *, config: str = "") -> None:
        self.kind, self.port = kind, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(STATE / f"bench-apps-{kind}-{self.port}.log", "w")
        if kind == "serve":
            cmd = [sys.executable, "-m", "salesplan.cli", "serve", "--notebooks", str(folder), "--port", str(self.port)]
            if config:
                path = Path(tempfile.mkstemp(suffix=".py", dir=STATE)[1])
                path.write_text(config)
                cmd += ["--config", str(path)]
        else:  # as `make app` served the apps before `salesplan serve`
            voila = Path(sys.executable).with_name("voila")
            cmd = [str(voila), str(folder), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={self.port}",
                   "--show_tracebacks=False"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start; see {log.name}")
            time.sleep(0.5)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_pools(self, limit_s: float = 300) -> None:
        if self.kind != "serve":
            return
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            with urllib.request.urlopen(self.url + "/salesplan/api/health", timeout=10) as r:
                health = json.load(r)
            if all(health["ready"].get(nb, 0) >= health["pool_size"].get(nb, 0) for nb in health["ready"]):
                return
            time.sleep(1)

    def kernels(self) -> list[psutil.Process]:
        out = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if any("ipykernel" in part for part in child.cmdline()):
                    out.append(child)
            except psutil.Error:
                pass
        return out

    def rss_mb(self) -> tuple[float, float]:
        """(server RSS, kernels' RSS summed) in MB."""
        server = psutil.Process(self.proc.pid).memory_info().rss / 2**20
        kernels = 0.0
        for k in self.kernels():
            try:
                kernels += k.memory_info().rss / 2**20
            except psutil.Error:
                pass
        return server, kernels

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _interactive(page) -> None:
    page.wait_for_load_state("load", timeout=TIMEOUT_MS)
    page.wait_for_selector("#rendered_cells", state="visible", timeout=TIMEOUT_MS)
    has_widgets = page.evaluate(
        "() => [...document.querySelectorAll('script[type=\"application/vnd.voila.cell-output+json\"]')]"
        ".some(s => s.textContent.includes('application/vnd.jupyter.widget-view+json'))")
    if has_widgets:
        page.wait_for_selector(".jupyter-widgets", state="visible", timeout=TIMEOUT_MS)


def _open(context, url: str) -> tuple[object, float]:
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
    _interactive(page)
    return page, time.perf_counter() - start


def _context(browser, server: Server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route(lambda url: not url.startswith(server.url), lambda route: route.abort())
    return context


def bench_open(browser, server: Server) -> dict[str, float]:
    out = {}
    for nb in NOTEBOOKS:
        server.wait_pools()
        context = _context(browser, server)
        page, seconds = _open(context, f"{server.url}/voila/render/{nb.name}")
        out[nb.name] = round(seconds, 2)
        page.close(run_before_unload=True)
        context.close()
        print(f"  open {server.kind:<5} {nb.name:<32} {seconds:6.2f} s", flush=True)
    return out


def bench_concurrent(browser, server: Server, n: int = 10) -> dict:
    server.wait_pools()
    context = _context(browser, server)
    pages, starts = [], []
    for _ in range(n):
        page = context.new_page()
        starts.append(time.perf_counter())
        page.goto(f"{server.url}/voila/render/{OVERVIEW}", wait_until="commit", timeout=TIMEOUT_MS)
        pages.append(page)
    times = []
    for page, start in zip(pages, starts):
        _interactive(page)
        page.wait_for_selector('.salesplan-kpi[data-kpi="revenue_12m"]', timeout=TIMEOUT_MS)
        times.append(time.perf_counter() - start)
    for page in pages:
        page.close(run_before_unload=True)
    context.close()
    times.sort()
    result = {"n": n, "p50_s": round(statistics.median(times), 2),
              "p90_s": round(times[int(0.9 * (n - 1) + 0.5)], 2), "max_s": round(times[-1], 2)}
    print(f"  concurrent {server.kind}: {result}", flush=True)
    return result


def bench_concurrent_http(server: Server, n: int = 10) -> dict:
    """n requests for the overview at once, without a browser: time until each full page has arrived.

    This is the server's share of opening a page (a real visitor's browser runs
    on their own machine); each kernel is then released the way a closing page
    does it (POST /voila/api/shutdown/<kernel> with the _xsrf cookie and field).
    """
    import http.cookiejar
    import re
    from concurrent.futures import ThreadPoolExecutor

    server.wait_pools()

    def one(_):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        start = time.perf_counter()
        with opener.open(f"{server.url}/voila/render/{OVERVIEW}", timeout=TIMEOUT_MS / 1000) as r:
            body = r.read().decode("utf-8", "replace")
        seconds = time.perf_counter() - start
        kernel = re.search(r'"kernelId": "([0-9a-f-]+)"', body)
        xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
        released = False
        if kernel:
            data = urllib.parse.urlencode({"_xsrf": xsrf}).encode()
            try:
                with opener.open(f"{server.url}/voila/api/shutdown/{kernel.group(1)}", data=data, timeout=60) as r:
                    released = r.status == 204
            except urllib.error.HTTPError:
                released = False
        return seconds, released

    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(one, range(n)))
    times = sorted(a[0] for a in answers)
    result = {"n": n, "p50_s": round(statistics.median(times), 2), "p90_s": round(times[int(0.9 * (n - 1) + 0.5)], 2),
              "max_s": round(times[-1], 2), "released_by_close_request": sum(a[1] for a in answers)}
    print(f"  concurrent http {server.kind}: {result}", flush=True)
    return result


def bench_concurrent_sessions(server: Server, n: int = 10) -> dict:
    """n overview sessions at once, without a browser: page, kernel connection and every widget's state.

    Each session does what a page does before it can draw: it requests the
    page, connects to its kernel's websocket and asks for the state of every
    widget (ipywidgets' ``request_states``), then closes the way a page does.
    The time until the last state has arrived is the server's and kernels'
    share of an interactive page; drawing is the visitor's own browser's work.
    """
    import asyncio
    import re
    import uuid

    from tornado.httpclient import AsyncHTTPClient, HTTPRequest
    from tornado.websocket import websocket_connect

    server.wait_pools()

    from ipywidgets.widgets.widget import __control_protocol_version__

    def message(session: str, msg_type: str, content: dict) -> str:
        header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session, "username": "bench",
                  "date": "", "version": "5.3"}
        return json.dumps({"header": header, "parent_header": {}, "metadata": {"version": __control_protocol_version__},
                           "content": content, "channel": "shell", "buffers": []})

    async def one() -> tuple[float, int, bool]:
        start = time.perf_counter()
        client = AsyncHTTPClient(force_instance=True)
        page = await client.fetch(f"{server.url}/voila/render/{OVERVIEW}", request_timeout=TIMEOUT_MS / 1000)
        body = page.body.decode("utf-8", "replace")
        kernel = re.search(r'"kernelId": "([0-9a-f-]+)"', body).group(1)
        cookies = "; ".join(c.split(";")[0] for c in page.headers.get_list("Set-Cookie"))
        session = uuid.uuid4().hex
        ws = await websocket_connect(HTTPRequest(
            f"ws://127.0.0.1:{server.port}/api/kernels/{kernel}/channels?session_id={session}",
            headers={"Cookie": cookies}), max_message_size=512 * 2**20)
        comm = uuid.uuid4().hex
        await ws.write_message(message(session, "comm_open", {"comm_id": comm, "target_name": "jupyter.widget.control",
                                                              "data": {}}))
        await ws.write_message(message(session, "comm_msg", {"comm_id": comm, "data": {"method": "request_states"}}))
        states = 0
        while True:
            raw = await asyncio.wait_for(ws.read_message(), TIMEOUT_MS / 1000)
            if raw is None:
                raise RuntimeError("the kernel's websocket closed before the widgets' state arrived")
            if isinstance(raw, bytes):  # a message with binary buffers: offsets, then the JSON, then the buffers
                count = int.from_bytes(raw[:4], "big")
                offsets = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(count)] + [len(raw)]
                raw = raw[offsets[0]:offsets[1]].decode("utf-8")
            if '"update_states"' in raw:
                states = len(json.loads(raw)["content"]["data"]["states"])
                break
        seconds = time.perf_counter() - start
        ws.close()
        xsrf = re.search(r"_xsrf=([^;]+)", cookies)
        released = False
        try:
            r = await client.fetch(f"{server.url}/voila/api/shutdown/{kernel}", method="POST",
                                   headers={"Cookie": cookies}, body=f"_xsrf={xsrf.group(1) if xsrf else ''}")
            released = r.code == 204
        except Exception:  # noqa: BLE001 - reported as not released
            released = False
        client.close()
        return seconds, states, released

    async def run():
        return await asyncio.gather(*(one() for _ in range(n)))

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:  # a loop of its own (playwright's sync API runs one here)
        answers = pool.submit(asyncio.run, run()).result()
    times = sorted(a[0] for a in answers)
    result = {"n": n, "p50_s": round(statistics.median(times), 2), "p90_s": round(times[int(0.9 * (n - 1) + 0.5)], 2),
              "max_s": round(times[-1], 2), "widgets": answers[0][1], "released_by_close_request": sum(a[2] for a in answers)}
    print(f"  concurrent sessions {server.kind}: {result}", flush=True)
    return result


def bench_round_trip(browser, server: Server, repeats: int = 12) -> dict:
    from salesplan.datasets import load_demo

    regions = sorted(load_demo()["transactions"]["region"].dropna().unique())
    server.wait_pools()
    context = _context(browser, server)
    page, _ = _open(context, f"{server.url}/voila/render/{OVERVIEW}")
    kpi = '.salesplan-kpi[data-kpi="revenue_12m"] .kpi-value'
    page.wait_for_selector(kpi, timeout=TIMEOUT_MS)
    select = page.locator(".widget-dropdown", has_text="Region").locator("select")
    choices = ["All", *regions]
    times = []
    for i in range(repeats):
        before = page.locator(kpi).inner_text()
        choice = choices[(i + 1) % len(choices)]
        start = time.perf_counter()
        select.select_option(choice)
        page.wait_for_function("([sel, old]) => document.querySelector(sel)?.innerText !== old",
                               arg=[kpi, before], timeout=60_000)
        times.append((time.perf_counter() - start) * 1000)
    server_rss, kernels_rss = server.rss_mb()
    session = {"server_rss_mb": round(server_rss, 1), "kernels": len(server.kernels()),
               "kernels_rss_mb": round(kernels_rss, 1)}
    page.close(run_before_unload=True)
    context.close()
    result = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
              "repeats": repeats, "with_one_overview_session": session}
    print(f"  round trip {server.kind}: {result}", flush=True)
    return result


def bench_cycles(browser, kind: str, cycles: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-apps-", dir=STATE))
    (folder / "cycle.ipynb").write_text(json.dumps(LIGHT_APP))
    server = Server(kind, folder, config="c.VoilaConfiguration.default_pool_size = 1\n")
    try:
        server.wait_pools()
        time.sleep(2)
        before = server.rss_mb()
        kernels_before = len(server.kernels())
        context = _context(browser, server)
        start = time.perf_counter()
        for _ in range(cycles):
            page, _ = _open(context, f"{server.url}/voila/render/cycle.ipynb")
            page.close(run_before_unload=True)
        elapsed = time.perf_counter() - start
        context.close()
        time.sleep(5)  # let the last close requests land
        after = server.rss_mb()
        result = {"cycles": cycles, "seconds": round(elapsed, 1), "kernels_before": kernels_before,
                  "kernels_after": len(server.kernels()), "server_rss_mb_before": round(before[0], 1),
                  "server_rss_mb_after": round(after[0], 1), "kernels_rss_mb_after": round(after[1], 1)}
    finally:
        server.stop()
    print(f"  cycles {kind}: {result}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--voila-cycles", type=int, default=40,
                        help="cycles for plain voila, whose kernels pile up (about 50 MB and a process each)")
    parser.add_argument("--overview-pool", type=int, default=10)
    parser.add_argument("--skip-open", action="store_true", help="skip the one-page-at-a-time opening of every app")
    parser.add_argument("--only-http", action="store_true",
                        help="only the browser-less concurrency, merged into the existing apps.json")
    args = parser.parse_args()
    if args.only_http:
        return _only_http(args.overview_pool)
    from playwright.sync_api import sync_playwright

    STATE.mkdir(exist_ok=True)
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "load_average_1min_start": round(os.getloadavg()[0], 2)}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for kind in ("serve", "voila"):
            print(f"== {kind}", flush=True)
            server = Server(kind, ROOT / "notebooks")
            try:
                res = results.setdefault(kind, {})
                if not args.skip_open:
                    res["open_s"] = bench_open(browser, server)
                res["round_trip"] = bench_round_trip(browser, server)
                res["concurrent_overview"] = bench_concurrent(browser, server)
                res["concurrent_overview_sessions"] = bench_concurrent_sessions(server)
            finally:
                server.stop()
        if args.overview_pool:
            print(f"== serve, overview pool {args.overview_pool}, refilled 30 s after a kernel is taken", flush=True)
            pools = {"default": {"pool_size": 1}, OVERVIEW: {"pool_size": args.overview_pool}}
            server = Server("serve", ROOT / "notebooks",
                            config=f"c.VoilaKernelManager.kernel_pools_config = {pools!r}\n{LATE_REFILL}")
            try:
                results["serve_overview_pool"] = {"pool": args.overview_pool,
                                                  "concurrent_overview": bench_concurrent(browser, server),
                                                  "concurrent_overview_sessions": bench_concurrent_sessions(server)}
            finally:
                server.stop()
        if args.cycles:
            for kind in ("serve", "voila"):
                cycles = args.cycles if kind == "serve" else min(args.cycles, args.voila_cycles)
                print(f"== {kind}: {cycles} open/close cycles", flush=True)
                results.setdefault(kind, {})["cycles"] = bench_cycles(browser, kind, cycles)
        browser.close()
    results["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "apps.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "apps.txt").write_text(_text(results))
    print(_text(results))
    return 0


def _only_http(overview_pool: int) -> int:
    path = RESULTS / "apps.json"
    results = json.loads(path.read_text()) if path.exists() else {"machine": {}}
    results["machine"]["load_average_1min_http"] = round(os.getloadavg()[0], 2)
    runs = [("serve", "serve", ""), ("voila", "voila", "")]
    if overview_pool:
        pools = {"default": {"pool_size": 1}, OVERVIEW: {"pool_size": overview_pool}}
        runs.append(("serve_overview_pool", "serve",
                     f"c.VoilaKernelManager.kernel_pools_config = {pools!r}\n{LATE_REFILL}"))
    for key, kind, config in runs:
        print(f"== {key}: concurrent requests without a browser", flush=True)
        server = Server(kind, ROOT / "notebooks", config=config)
        try:
            results.setdefault(key, {})["concurrent_overview_http"] = bench_concurrent_http(server)
            results[key]["concurrent_overview_sessions"] = bench_concurrent_sessions(server)
        finally:
            server.stop()
    path.write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "apps.txt").write_text(_text(results))
    print(_text(results))
    return 0


def _text(r: dict) -> str:
    lines = ["Published apps: salesplan serve (preheated) vs voila notebooks/ (as served before)",
             f"machine: {r['machine']}  (shared 2-core machine: timings are noisy)", ""]
    s, v = r.get("serve", {}), r.get("voila", {})
    if "open_s" in s:
        lines.append(f"{'app: request -> interactive (s)':<40}{'serve':>8}{'voila':>8}{'x faster':>10}")
        for nb in s["open_s"]:
            a, b = s["open_s"][nb], v.get("open_s", {}).get(nb)
            lines.append(f"{nb:<40}{a:>8.2f}{b if b is not None else float('nan'):>8.2f}"
                         f"{(b / a if b and a else float('nan')):>10.1f}")
        lines.append(f"goal <= 2 s per app (serve): {all(x <= 2 for x in s['open_s'].values())}")
        lines.append("")
    runs = (("serve (pool 1)", s), ("voila", v),
            (f"serve (overview pool {r.get('serve_overview_pool', {}).get('pool')}, refill 30 s)",
             r.get("serve_overview_pool", {})))
    for name, res in runs:
        c = res.get("concurrent_overview")
        if c:
            lines.append(f"10 concurrent overview sessions, {name:<28} p50 {c['p50_s']:6.2f} s  p90 {c['p90_s']:6.2f} s"
                         f"  max {c['max_s']:6.2f} s  (goal p90 <= 5 s: {c['p90_s'] <= 5})")
    for name, res in runs:
        c = res.get("concurrent_overview_http")
        if c:
            lines.append(f"10 concurrent overview requests, no browser, {name:<20} p50 {c['p50_s']:6.2f} s  "
                         f"p90 {c['p90_s']:6.2f} s  (page fully received; kernels released by the close request: "
                         f"{c['released_by_close_request']}/10)")
    for name, res in runs:
        c = res.get("concurrent_overview_sessions")
        if c:
            lines.append(f"10 concurrent overview sessions, no browser (page + kernel + {c['widgets']} widget states), "
                         f"{name:<20} p50 {c['p50_s']:6.2f} s  p90 {c['p90_s']:6.2f} s  (goal p90 <= 5 s: {c['p90_s'] <= 5})")
    lines.append("")
    for name, res in (("serve", s), ("voila", v)):
        rt = res.get("round_trip")
        if rt:
            lines.append(f"round trip (region dropdown -> KPI), {name:<6} median {rt['median_ms']:7.1f} ms"
                         f"  max {rt['max_ms']:7.1f} ms  (goal <= 150 ms: {rt['median_ms'] <= 150})")
            ses = rt["with_one_overview_session"]
            lines.append(f"  with one overview session open: server {ses['server_rss_mb']} MB, "
                         f"{ses['kernels']} kernels {ses['kernels_rss_mb']} MB")
    lines.append("")
    for name, res in (("serve", s), ("voila", v)):
        c = res.get("cycles")
        if c:
            lines.append(f"{c['cycles']} open/close cycles, {name:<6} kernels {c['kernels_before']} -> {c['kernels_after']}, "
                         f"server RSS {c['server_rss_mb_before']} -> {c['server_rss_mb_after']} MB, "
                         f"kernels RSS after {c['kernels_rss_mb_after']} MB ({c['seconds']} s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
