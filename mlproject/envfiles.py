"""conda.yaml is written from pyproject.toml's pins, so the dependencies are pinned in one place."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "# Written by `cardflow env-files` from pyproject.toml; edit the pins there, not here.\n"


def pinned_dependencies(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    data = tomllib.loads(pyproject.read_text())
    return list(data["project"]["dependencies"])


def render_conda_yaml(pyproject: Path = ROOT / "pyproject.toml") -> str:
    data = tomllib.loads(pyproject.read_text())
    python = "3.11"
    lines = [HEADER, "name: cardflow\n", "channels:\n  - conda-forge\n", "dependencies:\n",
             f"  - python={python}\n", "  - pip\n", "  - pip:\n"]
    lines += [f"      - {dep}\n" for dep in data["project"]["dependencies"]]
    return "".join(lines)


def write_conda_yaml(path: Path = ROOT / "conda.yaml") -> Path:
    path.write_text(render_conda_yaml())
    return path


def check_conda_yaml(path: Path = ROOT / "conda.yaml") -> list[str]:
    """Differences between conda.yaml and what pyproject.toml says it should be (empty when in step)."""
    if not path.is_file():
        return [f"{path} is missing; run `cardflow env-files`"]
    want, have = render_conda_yaml().splitlines(), path.read_text().splitlines()
    return [f"expected {w!r}, found {h!r}" for w, h in zip(want, have, strict=False) if w != h] + (
        [f"{path} has {len(have)} lines, expected {len(want)}"] if len(want) != len(have) else [])
