"""Vedette's benchmark suite: every number in bench/RESULTS.md, side by side with rss2email and
feed2exec, from one command.

    .venv/bin/python bench/run.py                                  # full: 1,000 feeds, 3 runs
    .venv/bin/python bench/run.py --quick --no-peers               # 100 feeds, 1 run, ~1 min
    .venv/bin/python bench/run.py --scenarios cold,warm --feeds 200 --runs 5

Scenarios (each reports wall time, CPU time and peak RSS of the measured process tree, and what
the feed farm saw on the wire):

  cold    `vedette poll` on a fresh database: every feed is new (1,000 feeds ≈ 59,000 articles)
  warm    `vedette poll` again, nothing changed: every feed answers 304
  tick    the farm adds 3 items to every feed, `vedette poll` again
  match   `match_bench.py`: matching throughput in MB/s with 100 / 1,000 / 10,000 terms
  alerts  alerts/s through Apprise `json://` to a loopback receiver (`sink.py`): N alerts are
          queued by a poll while the receiver refuses them, then `vedette alerts retry` is timed
  daemon  `vedette run` on every feed (30 s interval, the farm changing 5 % of the feeds each
          interval) for a bounded time, sampling RSS; peak RSS and RSS between polls

The peers run the cold, warm and tick polls on the same farm, in the same runs, each installed
in its own venv under bench/.venvs/ (see peers.py). Each run resets the farm to its first
version, so every tool in every run sees the same bytes.

The feed farm (`farm.py`) and the receiver run as separate processes, so their CPU is not
counted as Vedette's; every process the bench starts is stopped at the end, also on failure or
Ctrl-C. Results: a table on stdout and JSON in bench/out/results.json (`--out`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers
from measure import ProcessGroup, Usage, cpu_seconds, reap, run_measured, tree_rss_mb

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SCENARIOS = ("cold", "warm", "tick", "match", "alerts", "daemon")
POLL_SCENARIOS = ("cold", "warm", "tick")
VEDETTE = "vedette"
SEED = 7
POLL_TIMEOUT_S = 1800.0  # one poll of one tool; feed2exec needs ~13 min for a cold 1,000
TARGETS = {  # SPEC §6 and issue 7, on a 2-core machine
    "cold_wall_s": 60.0,
    "cold_speedup_vs_rss2email": 4.0,
    "warm_wall_s": 10.0,
    "tick_wall_s": 30.0,
    "match_mb_s_10000": 20.0,
    "daemon_peak_rss_mb": 150.0,
    "daemon_idle_rss_mb": 100.0,
    "alerts_per_s": 100.0,
}


@dataclass(slots=True)
class Plan:
    feeds: int
    runs: int
    peer_runs: int
    scenarios: list[str]
    peers: list[str]
    peer_scenarios: list[str]
    quick: bool
    seed: int
    daemon_s: float
    daemon_interval_s: float
    alerts: int
    out: Path
    python: str
    keep: bool
    src: Path
    config_lines: list[str]


# --- small helpers -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def get_json(url: str, timeout_s: float = 30.0) -> Any:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read())


def summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def system_busy_s() -> float:
    """CPU seconds all processes on the machine have used (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def child_env(home: Path | None = None) -> dict[str, str]:
    """The environment for every tool: no proxies (loopback only), no VEDETTE_* settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VEDETTE_") and k.lower() not in ("http_proxy", "https_proxy")
        and k.lower() not in ("all_proxy", "no_proxy")
    }  # fmt: skip
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if home is not None:
        env["HOME"] = str(home)
        env["XDG_CONFIG_HOME"] = str(home / ".config")
        env["XDG_DATA_HOME"] = str(home / ".local" / "share")
        env["XDG_CACHE_HOME"] = str(home / ".cache")
    return env


def find_vedette_python() -> str:
    """This interpreter if it can import Vedette, else the repository's .venv."""
    for candidate in (sys.executable, str(REPO / ".venv" / "bin" / "python")):
        probe = subprocess.run(
            [candidate, "-c", "import daemon.cli"], cwd=REPO, capture_output=True, timeout=60
        )
        if probe.returncode == 0:
            return candidate
    raise SystemExit(
        "cannot import Vedette: run the bench with the project's venv "
        "(.venv/bin/python bench/run.py) after `pip install -e .`"
    )


def machine_info(python: str) -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = subprocess.run(
        [python, "-c",
         "import importlib.metadata as m, sys, json; print(json.dumps({'python': sys.version"
         ".split()[0], **{p: m.version(p) for p in ('vedette', 'feedparser', 'httpx', "
         "'sqlite-utils', 'apprise', 'pyahocorasick', 'apscheduler')}}))"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    try:
        packages = json.loads(versions.stdout)
    except json.JSONDecodeError:
        packages = {"error": versions.stderr.strip()[-300:]}
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO, capture_output=True, text=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except OSError:
        commit = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "sqlite": sqlite3.sqlite_version,
        "packages": packages,
        "commit": commit,
        "load_at_start": os.getloadavg(),
    }


def source_digest(src: Path) -> str:
    """A short hash of the daemon/ package measured, since the tree may differ from a commit."""
    digest = hashlib.sha256()
    for path in sorted((src / "daemon").rglob("*.py")):
        digest.update(path.relative_to(src).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# --- loopback servers --------------------------------------------------------------------------


@dataclass(slots=True)
class Server:
    process: subprocess.Popen[Any]
    url: str
    banner: dict[str, Any]

    def get(self, path: str) -> Any:
        return get_json(self.url + path)


def start_server(
    group: ProcessGroup, script: str, args: Sequence[str], python: str, *, timeout_s: float = 300
) -> Server:
    """Start `bench/<script>` and wait for its JSON banner (its first stdout line)."""
    process = group.start(
        [python, str(BENCH / script), "--exit-on-stdin-eof", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, cwd=BENCH,
        env=child_env(),
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise RuntimeError(f"{script} did not start (exit code {process.returncode})")
        ready, _, _ = select.select([process.stdout], [], [], min(remaining, 1.0))
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"{script} closed its output before printing its address")
            line += chunk
    banner = json.loads(line.decode().splitlines()[0])
    return Server(process, banner["url"], banner)


# --- configuration for Vedette ----------------------------------------------------------------


def write_vedette_config(
    workdir: Path,
    feeds: Sequence[dict[str, Any]],
    *,
    watchlists: Path,
    alert_backlog: str = "24h",
    apprise_urls: Sequence[str] = (),
    interval: str = "10m",
    jitter: str = "30s",
    extra: Sequence[str] = (),
) -> Path:
    """A config in `workdir` (JSON is YAML): every feed on the farm's one loopback host, so
    per_host is raised to `concurrency` (1,000 real feeds sit on hundreds of hosts)."""
    workdir.mkdir(parents=True, exist_ok=True)
    q = json.dumps
    lines = [
        f"database: {q(str(workdir / 'vedette.db'))}",
        f"watchlists: {q(str(watchlists))}",
        f"alert_backlog: {q(alert_backlog)}",
        f"apprise_urls: {q(list(apprise_urls))}",
        f"defaults: {{interval: {interval}, jitter: {jitter}, timeout: 20s, per_host: 16}}",
        "concurrency: 16",
        "http: null",
        *extra,
        "feeds:",
    ]
    lines += [f"  - {{name: {f['name']}, url: {q(f['url'])}, tags: [{f['lang']}]}}" for f in feeds]
    path = workdir / "vedette.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def vedette_cmd(plan: Plan, config: Path, *args: str) -> list[str]:
    return [plan.python, "-m", "daemon", "--config", str(config), *args]


_SUMMARY = re.compile(
    r"polled (\d+) feeds: (\d+) new articles, (\d+) updated, (\d+) alerts "
    r"\((\d+) sent, (\d+) queued for retry\), (\d+) failing"
)


def poll_summary(stdout: Path) -> dict[str, int]:
    """The numbers from `vedette poll`'s last line (alerts printed before it are skipped)."""
    text = stdout.read_text(errors="replace")
    found = _SUMMARY.findall(text)
    if not found:
        return {}
    keys = ("feeds", "new", "updated", "alerts", "sent", "queued", "failing")
    return dict(zip(keys, (int(x) for x in found[-1]), strict=True))


def count_rows(database: Path, table: str) -> int | None:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return None


# --- measuring one command against the farm ----------------------------------------------------


@dataclass(slots=True)
class Bench:
    plan: Plan
    group: ProcessGroup
    farm: Server
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)

    def measure(
        self, cmd: Sequence[str], workdir: Path, label: str, *, env: dict[str, str] | None = None
    ) -> tuple[Usage, dict[str, Any]]:
        # `python -m daemon` imports the package from the working directory: --src
        """Run `cmd` with stdout/stderr to files in `workdir`; returns its usage and a record
        with the wire counters and how much CPU other processes on the machine used meanwhile."""
        before = self.farm.get("/stats")
        farm_cpu, busy, own = cpu_seconds(self.farm.process.pid), system_busy_s(), os.times()
        with (
            (workdir / f"{label}.out").open("wb") as out,
            (workdir / f"{label}.err").open("wb") as err,
        ):
            usage = run_measured(
                self.group, cmd, timeout_s=POLL_TIMEOUT_S, env=env or child_env(workdir),
                cwd=self.plan.src, stdout=out, stderr=err,
            )  # fmt: skip
        after = self.farm.get("/stats")
        own_after = os.times()
        others = (
            system_busy_s() - busy - usage.cpu_s
            - (cpu_seconds(self.farm.process.pid) - farm_cpu)
            - (own_after.user + own_after.system - own.user - own.system)
        )  # fmt: skip
        record = usage.as_dict() | {
            "wire": wire_delta(before, after),
            "others_cpu_s": round(max(others, 0.0), 2),
        }
        if usage.returncode != 0:
            tail = (workdir / f"{label}.err").read_text(errors="replace").strip()[-500:]
            record["error"] = f"exit code {usage.returncode}: {tail}"
        return usage, record


def wire_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    keys = ("requests", "ok_200", "not_modified_304", "conditional", "gzip", "body_bytes")
    delta: dict[str, Any] = {k: after[k] - before[k] for k in keys}
    statuses = set(after["status"]) | set(before["status"])
    delta["status"] = {
        s: after["status"].get(s, 0) - before["status"].get(s, 0)
        for s in sorted(statuses)
        if after["status"].get(s, 0) - before["status"].get(s, 0)
    }
    return delta


# --- scenarios: cold / warm / tick -------------------------------------------------------------


def poll_scenarios(bench: Bench, feeds: list[dict[str, Any]]) -> None:
    plan = bench.plan
    wanted = [s for s in POLL_SCENARIOS if s in plan.scenarios]
    # warm and tick start from the state the earlier polls leave, so those always run
    last = max(POLL_SCENARIOS.index(s) for s in wanted)
    steps = POLL_SCENARIOS[: last + 1]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in steps}
    # the peers run the polls up to the last of their scenarios (they need the earlier state)
    peer_last = max((steps.index(s) for s in plan.peer_scenarios if s in steps), default=-1)
    peer_steps = list(steps[: peer_last + 1])
    tools = [VEDETTE, *plan.peers]
    feed_pairs = [(f["name"], f["url"]) for f in feeds]
    for run in range(plan.runs):
        for tool in tools:
            if tool != VEDETTE and run >= plan.peer_runs:
                continue
            tool_steps = list(steps) if tool == VEDETTE else peer_steps
            if not tool_steps:
                continue
            bench.farm.get("/reset")
            workdir = bench.workdir / f"{tool}-run{run}"
            if tool == VEDETTE:
                config = write_vedette_config(
                    workdir, feeds, watchlists=BENCH / "watchlists", extra=plan.config_lines
                )
                cmd = vedette_cmd(plan, config, "poll")
            else:
                cmd = peers.SETUPS[tool](workdir, feed_pairs)
            for step in tool_steps:
                if step == "tick":
                    bench.farm.get("/tick?items=3&fraction=1")
                log(f"run {run + 1}/{plan.runs}: {tool} {step} ({len(feeds)} feeds)")
                _, record = bench.measure(cmd, workdir, step)
                if tool == VEDETTE:
                    record["vedette"] = poll_summary(workdir / f"{step}.out")
                    record["stored_articles"] = count_rows(workdir / "vedette.db", "articles")
                log(
                    f"  wall {record['wall_s']:.1f}s cpu {record['cpu_s']:.1f}s "
                    f"rss {record['peak_rss_mb']:.0f}MB wire {record['wire']['status']}"
                    + (f" ERROR {record['error'][:200]}" if "error" in record else "")
                )
                runs[step].setdefault(tool, []).append(record)
    for step in wanted:
        bench.results[step] = {
            tool: summarise_runs(records) for tool, records in runs[step].items()
        }


def summarise_runs(records: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in records if "error" not in r and not r["timed_out"]]
    result: dict[str, Any] = {
        "runs": records,
        "ok_runs": len(ok),
        "wall_s": summary([r["wall_s"] for r in ok]),
        "cpu_s": summary([r["cpu_s"] for r in ok]),
        "peak_rss_mb": summary([r["peak_rss_mb"] for r in ok]),
        "others_cpu_s": summary([r["others_cpu_s"] for r in ok]),
    }
    if ok:
        result["wire"] = ok[-1]["wire"]
        if "vedette" in ok[-1]:
            result["vedette"] = ok[-1]["vedette"]
            result["stored_articles"] = ok[-1].get("stored_articles")
    if len(ok) < len(records):
        result["errors"] = [r.get("error", "timed out") for r in records if r not in ok]
    return result


# --- scenario: match ---------------------------------------------------------------------------


def match_scenario(bench: Bench) -> None:
    plan = bench.plan
    cmd = [plan.python, str(BENCH / "match_bench.py"), "--json", "--runs", str(max(3, plan.runs))]
    if plan.quick:
        cmd.append("--quick")
    log("match: " + " ".join(cmd[1:]))
    workdir = bench.workdir / "match"
    workdir.mkdir(parents=True, exist_ok=True)
    env = child_env(workdir) | {"BENCH_DAEMON_SRC": str(plan.src)}
    _, record = bench.measure(cmd, workdir, "match", env=env)
    rows = []
    for line in (workdir / "match.out").read_text().splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            row["mb_per_s"] = summary(row.pop("mb_per_s"))
            rows.append(row)
            log(f"  terms={row['terms']:>6} {row['mb_per_s']['median']:.1f} MB/s")
    bench.results["match"] = {"by_terms": rows} | {
        k: record[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "others_cpu_s")
    }
    if "error" in record:
        bench.results["match"]["error"] = record["error"]


# --- scenario: alerts --------------------------------------------------------------------------


def alerts_scenario(bench: Bench, feeds: list[dict[str, Any]]) -> None:
    """Queue N alerts (the receiver refusing them), then time `vedette alerts retry`."""
    plan = bench.plan
    chosen, items = [], 0
    for feed in feeds:
        if feed["fault"] is None and items < plan.alerts:
            chosen.append(feed)
            items += feed["items"]
    sink = start_server(bench.group, "sink.py", ["--reject", "--max-lifetime", "7200"], plan.python)
    try:
        records = []
        for run in range(plan.runs):
            bench.farm.get("/reset")
            sink.get("/reject")
            workdir = bench.workdir / f"alerts-run{run}"
            host_port = sink.url.split("://", 1)[1]
            config = write_vedette_config(
                workdir,
                chosen,
                watchlists=BENCH / "watchlists-alerts",
                alert_backlog="all",
                apprise_urls=[f"json://{host_port}/alerts"],
                extra=plan.config_lines,
            )
            log(
                f"run {run + 1}/{plan.runs}: alerts: queueing ~{items} alerts ({len(chosen)} feeds)"
            )
            _, setup = bench.measure(vedette_cmd(plan, config, "poll"), workdir, "queue")
            queued = count_rows(workdir / "vedette.db", "alerts") or 0  # the whole outbox
            sink.get("/accept")
            sink.get("/stats?reset=1")
            _, record = bench.measure(
                vedette_cmd(plan, config, "alerts", "retry"), workdir, "retry"
            )
            stats = sink.get("/stats")
            sent = stats["accepted"]
            record |= {
                "queued": queued,
                "delivered": sent,
                "alerts_per_s": round(sent / record["wall_s"], 1) if record["wall_s"] else None,
                "receiver_alerts_per_s": round((sent - 1) / (stats["last"] - stats["first"]), 1)
                if sent > 1 and stats["last"] > stats["first"]
                else None,
                "queue_poll_wall_s": setup["wall_s"],
            }
            log(
                f"  {sent}/{queued} delivered in {record['wall_s']:.1f}s: "
                f"{record['alerts_per_s']} alerts/s "
                f"(receiver saw {record['receiver_alerts_per_s']}/s)"
            )
            records.append(record)
    finally:
        bench.group.stop(sink.process)
        bench.group.processes.remove(sink.process)
    ok = [r for r in records if "error" not in r and r["delivered"]]
    bench.results["alerts"] = {
        "runs": records,
        "alerts": items,
        "feeds": len(chosen),
        "alerts_per_s": summary([r["alerts_per_s"] for r in ok]),
        "receiver_alerts_per_s": summary(
            [r["receiver_alerts_per_s"] for r in ok if r["receiver_alerts_per_s"]]
        ),
        "wall_s": summary([r["wall_s"] for r in ok]),
        "cpu_s": summary([r["cpu_s"] for r in ok]),
        "peak_rss_mb": summary([r["peak_rss_mb"] for r in ok]),
    }


# --- scenario: daemon --------------------------------------------------------------------------


def daemon_scenario(bench: Bench, feeds: list[dict[str, Any]]) -> None:
    """`vedette run` from a fresh database for `daemon_s` seconds; the farm changes 5 % of the
    feeds every interval. RSS is sampled every 0.5 s with the farm's request count, so samples
    with no feed request in the previous 2 s count as "between polls"."""
    plan = bench.plan
    bench.farm.get("/reset")
    workdir = bench.workdir / "daemon"
    interval = f"{plan.daemon_interval_s:g}s"
    config = write_vedette_config(
        workdir, feeds, watchlists=BENCH / "watchlists", interval=interval, jitter="2s",
        extra=plan.config_lines,
    )  # fmt: skip
    log(f"daemon: vedette run, {len(feeds)} feeds, interval {interval}, for {plan.daemon_s:g}s")
    samples: list[tuple[float, float, int]] = []  # (t, tree RSS MB, farm feed requests)
    busy, farm_cpu = system_busy_s(), cpu_seconds(bench.farm.process.pid)
    started = time.perf_counter()
    with (workdir / "run.out").open("wb") as out, (workdir / "run.err").open("wb") as err:
        process = bench.group.start(
            vedette_cmd(plan, config, "run"), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            cwd=plan.src, env=child_env(workdir),
        )  # fmt: skip
        ticks = 0
        try:
            while (now := time.perf_counter() - started) < plan.daemon_s:
                if process.poll() is not None:
                    break
                if now >= (ticks + 1) * plan.daemon_interval_s:
                    ticks += 1
                    bench.farm.get("/tick?items=3&fraction=0.05")
                requests = bench.farm.get("/stats")["requests"]
                samples.append((now, tree_rss_mb(process.pid), requests))
                time.sleep(0.5)
            peak_sampled = max((s[1] for s in samples), default=0.0)
            os.killpg(process.pid, signal.SIGTERM)
            stopping = time.perf_counter()
            returncode, usage, timed_out = reap(process, time.monotonic() + 30)
        finally:
            if process in bench.group.processes:
                bench.group.stop(process)
                bench.group.processes.remove(process)
    stop_s = time.perf_counter() - stopping
    wall = time.perf_counter() - started
    idle = idle_samples(samples)
    first_cycle_end = next((s[0] for s in idle if s[2] >= len(feeds)), None)
    steady = [s for s in samples if first_cycle_end is not None and s[0] >= first_cycle_end]
    idle_rss = [s[1] for s in idle]
    others = system_busy_s() - busy - (usage.ru_utime + usage.ru_stime)
    others -= cpu_seconds(bench.farm.process.pid) - farm_cpu
    total_requests = samples[-1][2] - samples[0][2] if samples else 0
    result = {
        "feeds": len(feeds),
        "interval_s": plan.daemon_interval_s,
        "duration_s": round(wall, 1),
        "stop_s": round(stop_s, 2),
        "returncode": returncode,
        "killed": timed_out,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(max(peak_sampled, usage.ru_maxrss / 1024), 1),
        "first_cycle_end_s": round(first_cycle_end, 1) if first_cycle_end else None,
        "steady_peak_rss_mb": round(max(s[1] for s in steady), 1) if steady else None,
        "idle_rss_mb": summary(idle_rss),
        "idle_samples": len(idle),
        "samples": len(samples),
        "final_rss_mb": round(samples[-1][1], 1) if samples else None,
        "feed_requests": total_requests,
        "cycles": round(total_requests / len(feeds), 1) if feeds else None,
        "farm_ticks": ticks,
        "stored_articles": count_rows(workdir / "vedette.db", "articles"),
        "others_cpu_s": round(max(others, 0.0), 1),
        "rss_timeline": [(round(t, 1), round(mb, 1), r) for t, mb, r in samples[::4]],
    }
    log(
        f"  peak {result['peak_rss_mb']}MB, steady peak {result['steady_peak_rss_mb']}MB, "
        f"between polls {result['idle_rss_mb']}, {result['cycles']} cycles, exit {returncode}"
    )
    bench.results["daemon"] = result


def idle_samples(
    samples: list[tuple[float, float, int]], quiet_s: float = 2.0
) -> list[tuple[float, float, int]]:
    """Samples taken when the farm had seen no feed request for `quiet_s` seconds."""
    idle = []
    for i, (t, mb, requests) in enumerate(samples):
        earlier = [s for s in samples[:i] if t - s[0] >= quiet_s]
        if earlier and earlier[-1][2] == requests and requests > 0:
            idle.append((t, mb, requests))
    return idle


# --- report ------------------------------------------------------------------------------------


def fmt(stats: dict[str, float] | None, digits: int = 1) -> str:
    if not stats:
        return "-"
    if stats["n"] == 1:
        return f"{stats['median']:.{digits}f}"
    return f"{stats['median']:.{digits}f} ({stats['min']:.{digits}f}–{stats['max']:.{digits}f})"


def report(results: dict[str, Any]) -> list[str]:
    lines = []
    header = f"{'scenario':<8} {'tool':<10} {'wall s':<20} {'CPU s':<20} {'peak RSS MB':<20} wire"
    lines += [header, "-" * len(header)]
    for step in POLL_SCENARIOS:
        for tool, res in results.get(step, {}).items():
            wire = res.get("wire", {})
            wire_text = (
                f"{wire.get('requests', 0)} req, {wire.get('ok_200', 0)}×200, "
                f"{wire.get('not_modified_304', 0)}×304, {wire.get('body_bytes', 0) / 1e6:.1f} MB"
            )
            extra = res.get("vedette")
            if extra:
                wire_text += f"; {extra.get('new', 0)} new, {extra.get('alerts', 0)} alerts"
            lines.append(
                f"{step:<8} {tool:<10} {fmt(res['wall_s']):<20} {fmt(res['cpu_s']):<20} "
                f"{fmt(res['peak_rss_mb'], 0):<20} {wire_text}"
            )
            if res.get("errors"):
                lines.append(f"{'':<8} {tool:<10} errors: {res['errors'][0][:150]}")
    for step in POLL_SCENARIOS:
        vedette = results.get(step, {}).get(VEDETTE, {}).get("wall_s")
        for tool, res in results.get(step, {}).items():
            if tool != VEDETTE and vedette and res.get("wall_s"):
                speedup = res["wall_s"]["median"] / vedette["median"]
                cpu = res["cpu_s"]["median"] / results[step][VEDETTE]["cpu_s"]["median"]
                lines.append(
                    f"{step}: vedette/{tool} wall {1 / speedup:.3f} "
                    f"(vedette {speedup:.1f}× faster), CPU {1 / cpu:.3f} ({cpu:.1f}× less CPU)"
                )
    if "match" in results:
        for row in results["match"]["by_terms"]:
            lines.append(
                f"match    terms={row['terms']:<6} {fmt(row['mb_per_s'])} MB/s "
                f"(corpus {row['corpus_mb']} MB, compile {row['compile_s']} s)"
            )
    if "alerts" in results:
        a = results["alerts"]
        lines.append(
            f"alerts   {a['alerts']} articles' alerts via json:// : {fmt(a['alerts_per_s'])} "
            "alerts/s "
            f"(`alerts retry` wall {fmt(a['wall_s'])} s, receiver-side "
            f"{fmt(a['receiver_alerts_per_s'])}/s)"
        )
    if "daemon" in results:
        d = results["daemon"]
        lines.append(
            f"daemon   {d['feeds']} feeds, {d['duration_s']} s, {d['cycles']} cycles: peak RSS "
            f"{d['peak_rss_mb']} MB, after first cycle {d['steady_peak_rss_mb']} MB, between "
            f"polls {fmt(d['idle_rss_mb'])} MB, CPU {d['cpu_s']} s, exit {d['returncode']}"
        )
    return lines


def fmt_md(stats: dict[str, float] | None, digits: int = 1) -> str:
    if not stats:
        return "–"
    text = f"**{stats['median']:.{digits}f}**"
    if stats["n"] > 1:
        text += f" ({stats['min']:.{digits}f}–{stats['max']:.{digits}f})"
    return text


def report_markdown(document: dict[str, Any]) -> list[str]:
    """The tables of bench/RESULTS.md, from a results.json (`run.py --report FILE`)."""
    results = document["results"]
    lines = [
        "| scenario | tool | wall s | CPU s | peak RSS MB | on the wire | Vedette saw |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in POLL_SCENARIOS:
        for tool, res in results.get(step, {}).items():
            wire = res.get("wire", {})
            saw = res.get("vedette", {})
            seen = (
                f"{saw.get('new', 0):,} new, {saw.get('alerts', 0):,} alerts, "
                f"{saw.get('failing', 0)} failing"
                if saw
                else ""
            )
            lines.append(
                f"| {step} | {tool} | {fmt_md(res['wall_s'])} | {fmt_md(res['cpu_s'])} | "
                f"{fmt_md(res['peak_rss_mb'], 0)} | {wire.get('requests', 0)} req: "
                f"{wire.get('ok_200', 0)}×200, {wire.get('not_modified_304', 0)}×304, "
                f"{wire.get('body_bytes', 0) / 1e6:.1f} MB | {seen} |"
            )
    lines += ["", "| ratio (median wall, CPU) | Vedette / peer | Vedette is |", "|---|---|---|"]
    for step in POLL_SCENARIOS:
        vedette = results.get(step, {}).get(VEDETTE)
        for tool, res in results.get(step, {}).items():
            if tool == VEDETTE or not vedette or not res.get("wall_s"):
                continue
            wall = vedette["wall_s"]["median"] / res["wall_s"]["median"]
            cpu = vedette["cpu_s"]["median"] / res["cpu_s"]["median"]
            speed = f"{1 / wall:.1f}× faster" if wall <= 1 else f"{wall:.1f}× slower"
            thrift = f"{1 / cpu:.1f}× less CPU" if cpu <= 1 else f"{cpu:.1f}× more CPU"
            lines.append(
                f"| {step} vs {tool} | wall {wall:.2f}, CPU {cpu:.2f} | {speed}, {thrift} |"
            )
    if "match" in results:
        lines += ["", "| terms | MB/s | compile s |", "|---|---|---|"]
        for row in results["match"]["by_terms"]:
            lines.append(f"| {row['terms']:,} | {fmt_md(row['mb_per_s'])} | {row['compile_s']} |")
    if "alerts" in results:
        a = results["alerts"]
        delivered = statistics.median([r["delivered"] for r in a["runs"]] or [0])
        lines += [
            "",
            f"alerts: {a['alerts']:,} matching articles from {a['feeds']} feeds, "
            f"{delivered:,.0f} alerts (one per story) delivered through json:// — "
            f"{fmt_md(a['alerts_per_s'])} "
            f"alerts/s for the whole `vedette alerts retry` (wall {fmt_md(a['wall_s'])} s, "
            f"CPU {fmt_md(a['cpu_s'])} s, peak RSS {fmt_md(a['peak_rss_mb'], 0)} MB); the "
            f"receiver saw {fmt_md(a['receiver_alerts_per_s'])} alerts/s between its first "
            "and last POST",
        ]
    if "daemon" in results:
        d = results["daemon"]
        lines += [
            "",
            f"daemon: {d['feeds']} feeds, interval {d['interval_s']:g} s, {d['duration_s']} s, "
            f"{d['cycles']} polls per feed, {d['stored_articles']:,} articles stored: peak RSS "
            f"**{d['peak_rss_mb']} MB** (after the first cycle {d['steady_peak_rss_mb']} MB), "
            f"between polls {fmt_md(d['idle_rss_mb'])} MB over {d['idle_samples']} samples, "
            f"CPU {d['cpu_s']} s, stopped by SIGTERM in {d['stop_s']} s, exit {d['returncode']}",
        ]
    lines += ["", "| target | limit | measured | |", "|---|---|---|---|"]
    for check in document.get("targets", []):
        lines.append(
            f"| {check['target']} | {check['limit']} | {check['value']} | "
            f"{'met' if check['met'] else '**missed**'} |"
        )
    return lines


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    def median(*path: str) -> float | None:
        node: Any = results
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node["median"] if isinstance(node, dict) and "median" in node else node

    checks: list[tuple[str, float | None, str]] = [
        ("cold_wall_s", median("cold", VEDETTE, "wall_s"), "<="),
        ("warm_wall_s", median("warm", VEDETTE, "wall_s"), "<="),
        ("tick_wall_s", median("tick", VEDETTE, "wall_s"), "<="),
        ("alerts_per_s", median("alerts", "alerts_per_s"), ">="),
        ("daemon_peak_rss_mb", median("daemon", "peak_rss_mb"), "<="),
        ("daemon_idle_rss_mb", median("daemon", "idle_rss_mb", "max"), "<="),
    ]
    cold_r2e = median("cold", "rss2email", "wall_s")
    cold_v = median("cold", VEDETTE, "wall_s")
    if cold_r2e and cold_v:
        checks.append(("cold_speedup_vs_rss2email", cold_r2e / cold_v, ">="))
    for row in results.get("match", {}).get("by_terms", []):
        if row["terms"] == 10_000 and row["mb_per_s"]:
            checks.append(("match_mb_s_10000", row["mb_per_s"]["median"], ">="))
    out = []
    for name, value, op in checks:
        if value is None:
            continue
        target = TARGETS[name]
        met = value <= target if op == "<=" else value >= target
        out.append({"target": name, "limit": f"{op} {target:g}", "value": round(value, 2),
                    "met": met})  # fmt: skip
    return out


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Plan:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Targets (2 cores): " + ", ".join(f"{k} {v:g}" for k, v in TARGETS.items()),
    )
    parser.add_argument("--feeds", type=int, help="feeds on the farm (default 1000; quick 100)")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3; quick 1)")
    parser.add_argument(
        "--peer-runs", type=int, help="runs for the peers (default: --runs); they are slow"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run rss2email and feed2exec (installed into bench/.venvs/ on first use)",
    )
    parser.add_argument(
        "--peer", action="append", choices=[p.name for p in peers.PEERS],
        help="only this peer (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--peer-scenarios",
        default="cold,warm",
        help="poll scenarios the peers run too (default cold,warm; add tick for all three)",
    )
    parser.add_argument("--quick", action="store_true", help="small and fast: a smoke run")
    parser.add_argument("--seed", type=int, default=SEED, help="the farm's seed")
    parser.add_argument("--daemon-seconds", type=float, help="daemon scenario length (180; 30)")
    parser.add_argument("--daemon-interval", type=float, help="poll interval in s (30; 10)")
    parser.add_argument("--alerts", type=int, help="alerts to deliver (2000; quick 200)")
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "results.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument(
        "--config-line",
        action="append",
        metavar="YAML",
        help="a top-level line added to every generated Vedette config, e.g. "
        "'parse_workers: 0' (repeatable)",
    )
    parser.add_argument(
        "--report",
        metavar="RESULTS_JSON",
        help="only print the Markdown tables of an earlier results.json (given alone)",
    )
    parser.add_argument(
        "--src",
        type=Path,
        default=REPO,
        help="folder holding the daemon/ package to benchmark (default: this repository); "
        "point it at a patched copy to measure a change before making it",
    )
    args = parser.parse_args(argv)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {SCENARIOS}")
    quick = args.quick
    runs = args.runs or (1 if quick else 3)
    chosen_peers = args.peer or [p.name for p in peers.PEERS]
    return Plan(
        feeds=args.feeds or (100 if quick else 1000),
        runs=runs,
        peer_runs=min(runs, args.peer_runs or runs),
        scenarios=scenarios,
        peers=chosen_peers if args.peers else [],
        peer_scenarios=[s.strip() for s in args.peer_scenarios.split(",") if s.strip()],
        quick=quick,
        seed=args.seed,
        daemon_s=args.daemon_seconds or (30.0 if quick else 180.0),
        daemon_interval_s=args.daemon_interval or (10.0 if quick else 30.0),
        alerts=args.alerts or (200 if quick else 2000),
        out=args.out,
        python=find_vedette_python(),
        keep=args.keep,
        src=args.src.resolve(),
        config_lines=args.config_line or [],
    )


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so `finally` blocks stop every child."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--report"] and len(args) == 2:  # render an earlier run, run nothing
        print("\n".join(report_markdown(json.loads(Path(args[1]).read_text()))))
        return 0
    plan = parse_args(argv)
    group = ProcessGroup()
    workdir = Path(tempfile.mkdtemp(prefix="vedette-bench-"))
    started = time.time()
    results: dict[str, Any] = {}
    peer_status: dict[str, Any] = {}
    try:
        with stop_on_sigterm():
            for name in list(plan.peers):
                peer = next(p for p in peers.PEERS if p.name == name)
                log(f"installing {peer.requirement} into {peer.venv.relative_to(REPO)}")
                error = peers.ensure_installed(peer)
                peer_status[name] = (
                    {"status": "ok", "version": peer.version()}
                    if error is None
                    else {"status": "failed to install", "error": error}
                )
                if error is not None:
                    log(f"  {name}: {error}")
                    plan.peers.remove(name)
            epoch = int(time.time()) // 3600 * 3600
            log(f"starting the farm: {plan.feeds} feeds, seed {plan.seed}")
            farm = start_server(
                group, "farm.py",
                ["--feeds", str(plan.feeds), "--seed", str(plan.seed), "--epoch", str(epoch),
                 "--max-lifetime", "14400"],
                plan.python,
            )  # fmt: skip
            log(f"  {farm.url}: {json.dumps(farm.banner)}")
            feeds = farm.get("/feeds.json")
            bench = Bench(plan, group, farm, workdir, results)
            document: dict[str, Any] = {
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "plan": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(plan).items()},
                "machine": machine_info(plan.python),
                "daemon_source": {"path": str(plan.src), "sha256": source_digest(plan.src)},
                "farm": farm.banner,
                "peers": peer_status,
                "results": results,
                "partial": True,
            }

            def save() -> None:  # after every scenario, so a failure late keeps the rest
                document["duration_s"] = round(time.time() - started, 1)
                document["targets"] = check_targets(results)
                plan.out.parent.mkdir(parents=True, exist_ok=True)
                plan.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

            run_scenarios(bench, feeds, plan, save)
            for name, status in peer_status.items():
                failures = [
                    err
                    for step in POLL_SCENARIOS
                    for err in results.get(step, {}).get(name, {}).get("errors", [])
                ]
                if failures:
                    status["status"] = "failed to run"
                    status["error"] = failures[0][:500]
            document["partial"] = False
            document["machine"]["load_at_end"] = os.getloadavg()
            save()
    except KeyboardInterrupt:
        log("interrupted: stopping every process the bench started")
        return 130
    finally:
        group.stop_all()
        if plan.keep:
            log(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(report(results)))
    for check in document["targets"]:
        print(
            f"target {check['target']:<28} {check['limit']:<8} measured {check['value']:<9} "
            f"{'met' if check['met'] else 'MISSED'}"
        )
    for name, status in peer_status.items():
        print(f"peer {name}: {status['status']} {status.get('version') or status.get('error')}")
    print(f"results: {plan.out}")
    return 0


def run_scenarios(
    bench: Bench, feeds: list[dict[str, Any]], plan: Plan, save: Callable[[], None]
) -> None:
    steps: list[tuple[str, Callable[[], None]]] = [
        ("poll", lambda: poll_scenarios(bench, feeds)),
        ("match", lambda: match_scenario(bench)),
        ("alerts", lambda: alerts_scenario(bench, feeds)),
        ("daemon", lambda: daemon_scenario(bench, feeds)),
    ]
    for name, step in steps:
        if name == "poll" and not set(POLL_SCENARIOS) & set(plan.scenarios):
            continue
        if name != "poll" and name not in plan.scenarios:
            continue
        step()
        save()


if __name__ == "__main__":
    sys.exit(main())
