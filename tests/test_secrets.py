"""No part of a configured secret reaches any output; a malformed DATABASE_URL is a configuration error."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fleettickets.cli import main
from fleettickets.logs import redact
from fleettickets.settings import Settings, database_url_secrets

# CI runs a few dozen examples; FLEETTICKETS_FUZZ_EXAMPLES=2000 runs a long search.
EXAMPLES = int(os.environ.get("FLEETTICKETS_FUZZ_EXAMPLES", "0")) or 25


def pieces(secret: str, size: int = 4) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def leaks(secret: str, text: str, innocent: str = "") -> list[str]:
    """Pieces of the secret in `text`, except those `innocent` (the same run with another secret) also holds."""
    return sorted(p for p in pieces(secret) | {secret} if p in text and p not in innocent)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run the CLI in this process, in an empty folder (no .env), with a clean environment."""
    for name in list(os.environ):
        if name.startswith(("RUSTFS_", "GEOCODER_", "PG")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # The S3 test server logs from its own threads into whatever stream the
    # last in-process run left on the root logger; it is not output under test.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", True)
    yield


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    out = capsys.readouterr()
    return int(stopped.value.code or 0), out.out + out.err


@pytest.mark.parametrize(
    "url, password",
    [
        ("postgresql://u:pw@[::1/db", "pw"),
        ("postgresql://u:S3c@retPW@127.0.0.1/db", "S3c@retPW"),
        ("postgresql://u@127.0.0.1/db?password=S3cr%zzPW", "S3cr%zzPW"),
        ("postgresql://u:S3cretPW@127.0.0.1:5x32/db", "S3cretPW"),
        ("postgresql://u:S3cretPW@127.0.0.1:1/db?sslmode=sometimes", "S3cretPW"),
        ("postgresql://u:S3cretPW@127.0.0.1:1/db?port=fifty", "S3cretPW"),
        ("postgresql://u:S3cretPW@[::1]:99999/db", "S3cretPW"),
    ],
)
def test_a_malformed_database_url_is_one_line_and_exit_2(
    cli_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, password: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    for command in (["status"], ["migrate"], ["ingest", "--apply"]):
        status, output = run_main(command, capsys)
        assert status == 2, output
        assert output.startswith("Error: DATABASE_URL") and output.count("\n") == 1, output
        assert "Traceback" not in output, output
        assert not leaks(password, output) or len(password) < 4, output


def test_the_drivers_own_message_never_quotes_a_piece_of_the_password() -> None:
    secrets = database_url_secrets("postgresql://u:S3c@retPW@127.0.0.1/db")
    assert redact("failed to resolve host 'retPW@127.0.0.1'", secrets) == "failed to resolve host '***@127.0.0.1'"
    encoded = database_url_secrets("postgresql://u:p%40ssW0rd9@h/db?password=Zq%2F9xk")
    assert {"p%40ssW0rd9", "p@ssW0rd9", "Zq%2F9xk", "Zq/9xk"} <= set(encoded)


def test_secrets_are_known_even_when_the_settings_do_not_validate() -> None:
    found = Settings.secrets_in_environment(
        {"DATABASE_URL": "postgresql://u:pw-Xy7@[::1/db", "GEOCODER_API_KEY": "pk.9f8e7d"},
        env_file=Path("/nonexistent"),
    )
    assert "pw-Xy7" in found and "pk.9f8e7d" in found


PASSWORD_CHARS = st.characters(codec="ascii", categories=["L", "N", "P", "S"])
MALFORMATIONS = ("raw_at", "bad_percent", "open_bracket", "bad_port", "bad_sslmode", "bad_query_port")


def database_url(password: str, form: str, user: str, host: str, port: int, db: str) -> tuple[str, str]:
    """A URL carrying a password, well-formed or broken on purpose, and that password as written."""
    encoded = quote(password, safe="")
    good = f"postgresql://{user}:{encoded}@{host}:{port}/{db}"
    if form == "raw_at":  # an '@' left unencoded in the password
        head, tail = password[:3], password[3:]
        return f"postgresql://{user}:{quote(head, safe='')}@{quote(tail, safe='')}@{host}:{port}/{db}", f"{head}@{tail}"
    return {
        "encoded": good,
        "query": f"postgresql://{user}@{host}:{port}/{db}?password={encoded}",
        "bad_percent": f"postgresql://{user}:{encoded}%zz@{host}:{port}/{db}",
        "open_bracket": f"postgresql://{user}:{encoded}@[{host}:{port}/{db}",
        "bad_port": f"postgresql://{user}:{encoded}@{host}:{port}x/{db}",
        "bad_sslmode": good + "?sslmode=maybe",
        "bad_query_port": f"postgresql://{user}@{host}/{db}?password={encoded}&port=p{port}",
    }[form], password


@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    password=st.text(PASSWORD_CHARS, min_size=6, max_size=24),
    form=st.sampled_from(("encoded", "query", *MALFORMATIONS)),
    command=st.sampled_from(
        (["status"], ["migrate"], ["ingest", "--apply"], ["status", "--json"], ["ingest", "--json"])
    ),
)
@example(password="S3c@retPW", form="encoded", command=["status"])
@example(password="pw%zz%41W0rd", form="bad_percent", command=["migrate"])
@example(password="Kayole2026!", form="query", command=["ingest", "--apply"])
@example(password="00iled", form="bad_percent", command=["ingest", "--json"])  # "iled" is in the key "failed"
def test_no_output_holds_a_piece_of_the_password(
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    s3_settings: Settings,
    password: str,
    form: str,
    command: list[str],
) -> None:
    server = urlsplit(db_url)
    url, secret = database_url(
        password,
        form,
        server.username or "postgres",
        server.hostname or "127.0.0.1",
        server.port or 5432,
        server.path[1:],
    )
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("RUSTFS_ENDPOINT", s3_settings.s3_endpoint or "")
    monkeypatch.setenv("RUSTFS_ACCESS_KEY_ID", s3_settings.s3_access_key_id or "")
    monkeypatch.setenv("RUSTFS_SECRET_ACCESS_KEY", s3_settings.s3_secret_access_key or "")
    monkeypatch.setenv("RUSTFS_BUCKET", s3_settings.s3_bucket)

    status, output = run_main(command, capsys)
    # A short piece can be an ordinary word of the message ("iled" in
    # "failed"): it is a leak only if the same run with another password of the
    # same length does not print it too.
    other = "Q" * len(password)
    monkeypatch.setenv(
        "DATABASE_URL",
        database_url(
            other,
            form,
            server.username or "postgres",
            server.hostname or "127.0.0.1",
            server.port or 5432,
            server.path[1:],
        )[0],
    )
    _, innocent = run_main(command, capsys)

    assert not leaks(secret, output, innocent), (url, output)
    assert "Traceback" not in output, output
    if form in MALFORMATIONS:
        assert status == 2, (url, output)
