"""Deployment files: the Dockerfile lints and its install steps work, the cron wrapper, settings and docs agree."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleettickets.cli import cli
from fleettickets.settings import ENV_NAMES, Settings
from fleettickets_dev.sample_stream import write_sample_stream
from tests.stream_tools import job_env, upload

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the project environment: hadolint, shellcheck, fleettickets


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([BIN / "hadolint", "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = ["run_ingest.sh", "scripts/ensure-deps", "scripts/test", ".ci/run"]
    # Every other shell script in scripts/ (the ones starting with a bash shebang).
    scripts += [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "scripts").iterdir())
        if p.name not in ("ensure-deps", "test") and p.read_bytes().startswith(b"#!/usr/bin/env bash")
    ]
    result = subprocess.run([BIN / "shellcheck", *scripts], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_build_steps() -> tuple[list[str], list[str]]:
    """The build stage's COPY sources and its `uv sync` commands, as written in the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text()
    build = text.split("\nFROM ", 2)[1]
    copies = [src for line in re.findall(r"^COPY (?!--)(.+)$", build, re.M) for src in line.split()[:-1]]
    syncs = re.findall(r"^RUN (uv sync .+)$", build, re.M)
    return copies, syncs


def test_image_installs_from_the_lock_like_ci() -> None:
    _, syncs = dockerfile_build_steps()
    assert syncs and all(cmd.startswith("uv sync --locked --no-dev") for cmd in syncs)
    assert "uv sync --locked" in (ROOT / "scripts/ensure-deps").read_text()
    lock = (ROOT / "uv.lock").read_text()
    assert re.search(r"psycopg_binary-[\d.]+-cp312-cp312-manylinux", lock), "the image's Python 3.12 is in the lock"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, "the build context is an allow-list"
    assert not any(line.startswith("!.env") for line in ignored)


def test_image_install_steps_give_a_working_fleettickets(tmp_path: Path, empty_db_url: str) -> None:
    """Replays the Dockerfile's build stage (without Docker): copy, uv sync twice, then migrate."""
    copies, syncs = dockerfile_build_steps()
    src = tmp_path / "src"
    src.mkdir()
    for name in copies:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, src / name)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    for command in syncs:
        result = subprocess.run(
            [*command.split(), "--python", sys.executable, "--quiet"],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
    shutil.rmtree(src)  # the image keeps only the environment, not the source

    fleettickets = tmp_path / "venv" / "bin" / "fleettickets"
    installed = subprocess.run(
        [fleettickets, "migrate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": empty_db_url},
    )
    assert installed.returncode == 0, installed.stderr
    assert "applied 11_ingest_ledger.sql" in installed.stdout
    packaged = list((tmp_path / "venv").glob("lib/python*/site-packages/fleettickets/_migrations/*.sql"))
    assert sorted(p.name for p in packaged) == sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    # The map page inlines Leaflet and its own script from the package's data files.
    drawn = subprocess.run(
        [fleettickets, "map", "--out", "map.html", "--tiles", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": empty_db_url},
    )
    assert drawn.returncode == 0, drawn.stderr
    assert "window.fleetMap" in (tmp_path / "map.html").read_text()


def wrapper_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "run_ingest.sh", folder / "run_ingest.sh")
    return folder / "run_ingest.sh"


@pytest.mark.parametrize("status", [0, 1, 2, 75])
def test_run_ingest_passes_the_exit_status_through(tmp_path: Path, status: int) -> None:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    stub = stubs / "fleettickets"
    stub.write_text(f'#!/bin/sh\necho "args: $*"; echo "cwd: $(pwd)"; exit {status}\n')
    stub.chmod(0o755)
    script = wrapper_in(tmp_path / "app")
    result = subprocess.run([script], cwd="/", capture_output=True, text=True, env={"PATH": f"{stubs}:/usr/bin:/bin"})
    assert result.returncode == status
    assert result.stdout == f"args: ingest --apply\ncwd: {script.parent}\n"


def test_run_ingest_without_fleettickets_says_so(tmp_path: Path) -> None:
    result = subprocess.run([wrapper_in(tmp_path)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "fleettickets is not installed here" in result.stderr


def test_run_ingest_reads_env_beside_it_and_prints_no_secret(
    tmp_path: Path, db_url: str, s3_settings: Settings
) -> None:
    upload(s3_settings, write_sample_stream(tmp_path / "s", baseline_rows=20, deltas=1, delta_rows=5))
    script = wrapper_in(tmp_path / "app")
    settings_env = job_env(db_url, s3_settings, GEOCODER_API_KEY="geo-key-in-dotenv")
    settings_env.pop("PATH")
    (script.parent / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings_env.items()))
    result = subprocess.run(
        [script], cwd="/", capture_output=True, text=True, timeout=120, env={"PATH": f"{BIN}:/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.stderr
    assert "total: 2 files" in result.stdout
    for secret in [s3_settings.s3_secret_access_key, s3_settings.s3_access_key_id, "geo-key-in-dotenv"]:
        assert secret and secret not in result.stdout + result.stderr


def test_env_example_lists_every_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    for variable in ENV_NAMES.values():
        assert re.search(rf"^(# )?{variable}=", example, re.M), f"{variable} missing from .env.example"
    Settings.from_env({}, env_file=ROOT / ".env.example")  # its placeholders are valid


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in cli.commands:
        assert f"fleettickets {name}" in readme, f"`fleettickets {name}` is not described in README.md"
