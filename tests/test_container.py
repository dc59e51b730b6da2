"""Builds the image with podman and smoke-tests it (scripts/container-smoke.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.container


@pytest.mark.skipif(os.geteuid() != 0, reason="container smoke test needs root (podman rootful)")
@pytest.mark.skipif(
    shutil.which("podman") is None,
    reason="podman not installed: container smoke test needs podman, buildah, runc, mmdebstrap",
)
def test_container_smoke() -> None:
    result = subprocess.run(
        ["bash", "scripts/container-smoke.sh"], capture_output=True, text=True, timeout=1200
    )
    assert "SMOKE PASS" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
