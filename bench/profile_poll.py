"""Where a cold `vedette poll` spends its CPU: py-spy samples, grouped by pipeline stage.

    .venv/bin/python bench/profile_poll.py                  # 200 feeds (~12,000 articles)
    .venv/bin/python bench/profile_poll.py --feeds 1000 --stage tick

Starts the farm, polls once (and, with `--stage warm` or `tick`, polls again first so the
profiled poll is the warm or tick one), under `py-spy record` (installed into
bench/.venvs/tools on first use), then prints three tables from the samples of every thread:

* by stage: the innermost `daemon/` module on the stack (parse, store, match, fetch, ...), with
  the library doing the work under it (feedparser, sqlite3, html.parser, httpx, ...);
* by library: the package of the innermost frame (self time);
* the top functions by self time.

The raw collapsed stacks stay in bench/out/profile-<stage>.txt for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run
from measure import ProcessGroup

BENCH = Path(__file__).resolve().parent
TOOLS = BENCH / ".venvs" / "tools"
PY_SPY = TOOLS / "bin" / "py-spy"
STAGES = {  # daemon module -> stage name
    "parse": "parse",
    "store": "store",
    "storeschema": "store",
    "match": "match",
    "text": "match",
    "translit": "match",
    "inflect": "match",
    "rules": "match",
    "alert": "alert",
    "outbox": "outbox+notify",
    "notify": "outbox+notify",
    "render": "outbox+notify",
    "fetch": "fetch",
    "config": "startup",
    "yamlfile": "startup",
    "watchlists": "startup",
    "cli": "startup",
    "service": "service",
    "pipeline": "pipeline",
}


def ensure_py_spy() -> Path:
    if not PY_SPY.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        subprocess.run(
            [str(TOOLS / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", "py-spy==0.4.3"],
            check=True, timeout=600,
        )  # fmt: skip
    return PY_SPY


def frame_file(frame: str) -> str:
    """`func (path/to/file.py:12)` -> `path/to/file.py`."""
    inside = frame.rsplit("(", 1)[-1].rstrip(")")
    return inside.rsplit(":", 1)[0]


def module_path(frame: str) -> str:
    """py-spy names files relative to their sys.path entry: `sqlite_utils/db.py`."""
    path = frame_file(frame)
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            path = path.split("/", 1)[1] if marker.startswith("/lib") else path
    return path.lstrip("/")


def library(frame: str) -> str:
    """`daemon.parse` for our modules, else the top-level package (`feedparser`, `sqlite3`)."""
    path = module_path(frame)
    if "<frozen" in path:
        return "(imports)"
    parts = path.split("/")
    if parts[0] == "daemon":
        return "daemon." + Path(path).stem
    return parts[0].removesuffix(".py")


def stage(frames: list[str]) -> str:
    for frame in reversed(frames):  # innermost first
        path = module_path(frame)
        if path.startswith("daemon/"):
            return STAGES.get(Path(path).stem, Path(path).stem)
        if "<frozen importlib" in path:
            return "imports"
    return "other"


def analyse(raw: Path, top: int = 25) -> list[str]:
    by_stage: collections.Counter[str] = collections.Counter()
    detail: collections.Counter[tuple[str, str]] = collections.Counter()
    by_library: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        total += count
        name = stage(frames)
        leaf_library = library(frames[-1])
        by_stage[name] += count
        detail[(name, leaf_library)] += count
        by_library[leaf_library] += count
        by_function[frames[-1]] += count
    lines = [f"{total} samples"]
    lines.append("\nby stage (innermost daemon/ module), with the libraries under it:")
    for name, count in by_stage.most_common():
        parts = [
            f"{lib} {c / total:.0%}"
            for (s, lib), c in detail.most_common()
            if s == name and c / total >= 0.005
        ][:5]
        lines.append(f"  {name:<14} {count / total:6.1%}   {', '.join(parts)}")
    lines.append("\nby library (self time):")
    for name, count in by_library.most_common(15):
        lines.append(f"  {name:<30} {count / total:6.1%}")
    lines.append(f"\ntop {top} functions (self time):")
    for name, count in by_function.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name[:110]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--stage", choices=["cold", "warm", "tick"], default="cold")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--raw", type=Path, help="analyse an existing raw file and exit")
    parser.add_argument(
        "--gil", action="store_true", help="only sample the thread holding the GIL (py-spy --gil)"
    )
    args = parser.parse_args(argv)
    if args.raw:
        print("\n".join(analyse(args.raw)))
        return 0
    py_spy = ensure_py_spy()
    python = run.find_vedette_python()
    group = ProcessGroup()
    out = BENCH / "out" / f"profile-{args.stage}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vedette-profile-") as tmp:
        workdir = Path(tmp)
        try:
            farm = run.start_server(
                group, "farm.py", ["--feeds", str(args.feeds), "--max-lifetime", "3600",
                                   "--epoch", str(int(time.time()) // 3600 * 3600)], python,
            )  # fmt: skip
            feeds = farm.get("/feeds.json")
            config = run.write_vedette_config(workdir, feeds, watchlists=BENCH / "watchlists")
            poll = [python, "-m", "daemon", "--config", str(config), "poll"]
            env = run.child_env(workdir)
            for step in run.POLL_SCENARIOS[: run.POLL_SCENARIOS.index(args.stage)]:
                subprocess.run(poll, cwd=run.REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=True, timeout=1800)  # fmt: skip
                if step == "warm":
                    farm.get("/tick?items=3&fraction=1")
            started = time.perf_counter()
            subprocess.run(
                [str(py_spy), "record", "--format", "raw", "--rate", str(args.rate),
                 "--nonblocking", *(["--gil"] if args.gil else []), "-o", str(out), "--", *poll],
                cwd=run.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                check=True, timeout=3600,
            )  # fmt: skip
            print(f"{args.stage} poll of {args.feeds} feeds under py-spy: "
                  f"{time.perf_counter() - started:.1f}s; raw stacks in {out}")  # fmt: skip
        finally:
            group.stop_all()
    print("\n".join(analyse(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
