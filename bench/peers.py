"""The tools Vedette is compared with, each installed in its own venv under bench/.venvs/.

* rss2email (`r2e run --no-send`): fetches, parses and turns every new entry into an e-mail it
  does not send. `same-server-fetch-interval = 0`, since every farm feed is on one host.
* feed2exec (`feed2exec fetch`, every feed with `output = feed2exec.plugins.null`): fetches with
  requests + CacheControl (its conditional GET), parses, records seen entries in SQLite.

Both fetch one feed after the other; that is how they work, not a handicap the bench adds.
A tool that fails to install or run is reported as such, with the error, never with numbers.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"
INSTALL_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    requirement: str  # what pip installs, pinned so runs stay comparable
    executable: str  # console script inside the venv

    @property
    def venv(self) -> Path:
        return VENVS / self.name

    @property
    def bin(self) -> Path:
        return self.venv / "bin" / self.executable

    def version(self) -> str:
        try:
            out = subprocess.run(
                [str(self.venv / "bin" / "python"), "-m", "pip", "show", self.name],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return "?"
        for line in out.splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
        return "?"


RSS2EMAIL = Peer("rss2email", "rss2email==3.14", "r2e")
FEED2EXEC = Peer("feed2exec", "feed2exec==0.23.0", "feed2exec")
PEERS = (RSS2EMAIL, FEED2EXEC)


def ensure_installed(peer: Peer) -> str | None:
    """Create the peer's venv and pip-install it (once); None when ready, else the error."""
    marker = peer.venv / ".installed"
    if marker.exists() and marker.read_text() == peer.requirement and peer.bin.exists():
        return None
    try:
        if not (peer.venv / "bin" / "python").exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(peer.venv)
        result = subprocess.run(
            [str(peer.venv / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", peer.requirement],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not create the venv or run pip: {exc}"
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "ERROR" in line]
        return f"pip install {peer.requirement} failed: {' | '.join(lines[-3:]) or result.stderr}"
    smoke = subprocess.run([str(peer.bin), "--help"], capture_output=True, text=True, timeout=120)
    if smoke.returncode != 0:
        return (
            f"{peer.executable} --help failed on Python {sys.version.split()[0]}: "
            + (smoke.stderr.strip().splitlines() or ["no output"])[-1]
        )
    marker.write_text(peer.requirement)
    return None


def rss2email_setup(workdir: Path, feeds: Sequence[tuple[str, str]]) -> list[str]:
    """Write rss2email's config (one section per feed) and return the poll command."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "rss2email.cfg"
    lines = [
        "[DEFAULT]",
        "to = bench@example.invalid",
        "same-server-fetch-interval = 0",
        "feed-timeout = 20",
        "",
    ]
    for name, url in feeds:
        lines += [f"[feed.{name}]", f"url = {url}", ""]
    config.write_text("\n".join(lines))
    return [str(RSS2EMAIL.bin), "-c", str(config), "-d", str(workdir / "rss2email.json"),
            "run", "--no-send"]  # fmt: skip


def feed2exec_setup(workdir: Path, feeds: Sequence[tuple[str, str]]) -> list[str]:
    """Write feed2exec's config (null output plugin) and return the poll command."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "feed2exec.ini"
    lines = []
    for name, url in feeds:
        lines += [f"[{name}]", f"url = {url}", "output = feed2exec.plugins.null", ""]
    config.write_text("\n".join(lines))
    return [str(FEED2EXEC.bin), "--config", str(config), "--database",
            str(workdir / "feed2exec.db"), "fetch"]  # fmt: skip


SETUPS = {"rss2email": rss2email_setup, "feed2exec": feed2exec_setup}
