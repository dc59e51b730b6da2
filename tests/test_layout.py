"""Project rules that are easy to break silently: library ownership, purity, README ↔ CI."""

from __future__ import annotations

import ast
from pathlib import Path

DAEMON = Path("daemon")
OWNERS = {
    "httpx": "fetch.py",
    "feedparser": "parse.py",
    "sqlite_utils": "store.py",
    "apprise": "notify.py",
    "apscheduler": "scheduler.py",
    "click": "cli.py",
    "yaml": "yamlfile.py",
    "pydantic": "config.py",
    "ahocorasick": "match.py",
    "prometheus_client": "metrics.py",
}
PURE = ("match.py", "rules.py", "text.py", "translit.py", "inflect.py", "parse.py", "render.py")
PURE += ("alert.py", "stories.py", "digest.py", "templates.py")
IMPURE_MODULES = {
    "os",
    "socket",
    "sqlite3",
    "subprocess",
    "httpx",
    "urllib.request",
    "time",
    "random",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_each_library_is_imported_in_one_module() -> None:
    for path in DAEMON.glob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in OWNERS:
                assert path.name == OWNERS[top], f"{path} imports {top}; only {OWNERS[top]} may"


def test_pure_modules_do_no_io() -> None:
    for name in PURE:
        path = DAEMON / name
        if not path.exists():
            continue
        bad = {m for m in imported_modules(path) if m in IMPURE_MODULES}
        assert not bad, f"{name} must stay pure but imports {bad}"
        assert "open(" not in path.read_text(encoding="utf-8"), f"{name} opens files"


def test_readme_starts_with_the_two_setup_commands_and_ci_runs_the_second() -> None:
    readme = Path("README.md").read_text(encoding="utf-8")
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2
    run_command, test_command = block
    assert run_command.endswith("vedette run")
    assert test_command in Path(".ci/run").read_text(encoding="utf-8")


def test_no_dependency_on_python_daemon() -> None:
    assert "python-daemon" not in Path("pyproject.toml").read_text(encoding="utf-8")
