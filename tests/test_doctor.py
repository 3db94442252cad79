"""`fleettickets doctor`: every setting with its source, secrets masked, one line per check."""

from __future__ import annotations

import json
from pathlib import Path

from fleettickets.settings import Settings
from tests.geocode_server import KEYS, FakeGeocodeServer
from tests.stream_tools import job_env, run_cli


def put_change_file(settings: Settings) -> None:
    from fleettickets.s3 import make_s3_client

    make_s3_client(settings).put_object(
        Bucket=settings.s3_bucket, Key=f"{settings.changes_prefix}x.csv", Body=b"ticket_id\n"
    )


def doctor(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = run_cli(["doctor", "--json", *args], env, cwd)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def statuses(document: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {check["name"]: check["status"] for check in document["checks"]}


def test_a_deployment_set_up_right_passes_every_check(db_url: str, s3_settings: Settings, tmp_path: Path) -> None:
    put_change_file(s3_settings)
    code, document = doctor(job_env(db_url, s3_settings), tmp_path)
    assert code == 0, document
    assert statuses(document) == {
        "settings": "ok",
        "database": "ok",
        "postgis": "ok",
        "migrations": "ok",
        "reader role": "ok",
        "clock skew": "ok",
        "bucket": "ok",
        "geocoder": "skipped",
    }
    assert document["ok"] is True
    assert document["settings"]["RUSTFS_SECRET_ACCESS_KEY"] == {"value": "***", "source": "environment"}
    assert document["settings"]["RUSTFS_REGION"] == {"value": "us-east-1", "source": "default"}


def test_text_output_names_each_check_and_masks_secrets(db_url: str, s3_settings: Settings, tmp_path: Path) -> None:
    put_change_file(s3_settings)
    env = job_env(db_url, s3_settings, HEARTBEAT_URL="https://hc-ping.com/6f0c1d2e-secret-uuid")
    result = run_cli(["doctor"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK      database: PostgreSQL " in result.stdout
    assert "6f0c1d2e-secret-uuid" not in result.stdout and s3_settings.s3_secret_access_key not in result.stdout  # type: ignore[operator]
    assert result.stdout.splitlines()[-1] == "all checks pass: 7 ok, 0 failed, 1 skipped"


def test_a_setting_from_the_env_file_says_so(db_url: str, s3_settings: Settings, tmp_path: Path) -> None:
    put_change_file(s3_settings)
    env = job_env(db_url, s3_settings)
    (tmp_path / ".env").write_text(f"RUSTFS_BUCKET={env.pop('RUSTFS_BUCKET')}\n")
    code, document = doctor(env, tmp_path)
    assert code == 0, document
    assert document["settings"]["RUSTFS_BUCKET"] == {"value": s3_settings.s3_bucket, "source": ".env"}


def test_pending_migrations_and_an_empty_prefix_fail(empty_db_url: str, s3_settings: Settings, tmp_path: Path) -> None:
    code, document = doctor(job_env(empty_db_url, s3_settings), tmp_path)
    assert code == 1
    checks = statuses(document)
    assert checks["migrations"] == "fail" and checks["bucket"] == "fail" and checks["database"] == "ok"
    detail = {c["name"]: c["detail"] for c in document["checks"]}
    assert "pending" in detail["migrations"] and "fleettickets migrate" in detail["migrations"]
    assert "check INC_PREFIX" in detail["bucket"]


def test_an_unreachable_database_fails_without_its_password(s3_settings: Settings, tmp_path: Path) -> None:
    put_change_file(s3_settings)
    env = job_env("postgresql://app:Zq8vTopSecret@127.0.0.1:1/x", s3_settings)
    result = run_cli(["doctor", "--json"], env, tmp_path)
    assert result.returncode == 1
    assert "Zq8vTopSecret" not in result.stdout + result.stderr
    checks = statuses(json.loads(result.stdout))
    assert checks["database"] == "fail" and checks["migrations"] == "skipped" and checks["bucket"] == "ok"


def test_a_malformed_setting_fails_the_settings_check(tmp_path: Path) -> None:
    code, document = doctor({"PATH": "/usr/bin:/bin", "EXPORT_HOURS": "all day"}, tmp_path)
    assert code == 1
    assert document["checks"][0] == {
        "name": "settings",
        "status": "fail",
        "detail": "EXPORT_HOURS must look like 06:00-20:00 (EAT, start-end)",
    }


def test_the_geocoder_key_is_checked_with_one_request(db_url: str, s3_settings: Settings, tmp_path: Path) -> None:
    put_change_file(s3_settings)
    with FakeGeocodeServer("locationiq", key=KEYS["locationiq"]) as fake:
        base = job_env(db_url, s3_settings, GEOCODER_PROVIDER="locationiq", GEOCODER_BASE_URL=fake.url)
        good = doctor({**base, "GEOCODER_API_KEY": KEYS["locationiq"]}, tmp_path, "--geocoder")
        bad = doctor({**base, "GEOCODER_API_KEY": "pk.wrong-key-0000"}, tmp_path, "--geocoder")
    assert good[0] == 0 and statuses(good[1])["geocoder"] == "ok"
    assert bad[0] == 1 and statuses(bad[1])["geocoder"] == "fail"
