"""Screenshots of rendered reports in headless Chromium (Debian's ``chromium``), at phone and
desktop widths, for a human to review how the email lays out. A review aid: nothing in the
pipeline depends on it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from touchpoint.errors import TouchpointError

#: name -> (width, height) in CSS pixels; the height is generous, the page background fills the rest
VIEWPORTS = {"phone": (390, 3600), "desktop": (1280, 3000)}


def chromium_binary(install: bool = True, log: Callable[[str], None] = print) -> str:
    """The Chromium executable; installs Debian's package when missing and allowed (root)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if install and shutil.which("apt-get"):
        log("Chromium not found: installing Debian's chromium package")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise TouchpointError(f"{' '.join(cmd)} failed: {result.stderr.strip()[-500:]}")
        found = shutil.which("chromium")
        if found:
            return found
    raise TouchpointError(
        "Chromium is not installed: apt-get install chromium (Debian) and try again"
    )


def screenshot(
    html: Path, out: Path, width: int, height: int, chromium: str, timeout: float = 60
) -> Path:
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--allow-file-access-from-files",
        f"--window-size={width},{height}",
        f"--screenshot={out}",
        html.resolve().as_uri(),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0 or not out.exists():
        raise TouchpointError(
            f"Chromium could not screenshot {html}: {result.stderr.strip()[-500:]}"
        )
    return out


def screenshot_previews(html_files: list[Path], log: Callable[[str], None] = print) -> list[Path]:
    """Next to each preview's report.html, ``screenshot-phone.png`` and
    ``screenshot-desktop.png``."""
    chromium = chromium_binary(log=log)
    shots = []
    for html in html_files:
        for name, (width, height) in VIEWPORTS.items():
            shots.append(
                screenshot(html, html.parent / f"screenshot-{name}.png", width, height, chromium)
            )
            log(f"  {shots[-1]}")
    return shots
