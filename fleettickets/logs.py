"""Logging set-up: readable lines on a terminal, one JSON object per event elsewhere, secrets masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

import click

_run_id = uuid.uuid4().hex[:12]


def new_run_id() -> str:
    """Start a new run: every log event from now on carries this id."""
    global _run_id
    _run_id = uuid.uuid4().hex[:12]
    return _run_id


# Attributes every LogRecord has; anything else came in through `extra=` and is
# part of the event's payload.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# A query parameter that carries a credential: key=, api_key=, apikey=, token=, access_token=...
_URL_KEY = re.compile(r"(?i)\b([\w-]*(?:key|token)=)[^&\s'\"<>#]+")


# A piece of a secret this long is masked wherever it appears: a driver that
# splits a malformed URL in the wrong place quotes part of the password.
SECRET_PIECE = 4


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask `key=` query parameters, every secret value (also URL-encoded) and every 4-character piece of one."""
    text = _URL_KEY.sub(r"\1***", text)
    covered = bytearray(len(text))
    # A secret inside a URL (a request that failed, say) appears percent-encoded.
    forms = {form for s in secrets if s for form in (s, quote(s, safe=""), quote_plus(s))}
    for secret in forms:
        start = text.find(secret)
        while start >= 0:
            covered[start : start + len(secret)] = b"\1" * len(secret)
            start = text.find(secret, start + 1)
        pieces = {secret[i : i + SECRET_PIECE] for i in range(len(secret) - SECRET_PIECE + 1)}
        if pieces:
            for i in range(len(text) - SECRET_PIECE + 1):
                if text[i : i + SECRET_PIECE] in pieces:
                    covered[i : i + SECRET_PIECE] = b"\1" * SECRET_PIECE
    if not any(covered):
        return text
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append("***")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def redact_data(data: Any, secrets: Iterable[str]) -> Any:
    """``data`` (JSON-like) with every string in it redacted."""
    secrets = list(secrets)
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, dict):
        return {redact_data(k, secrets): redact_data(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v, secrets) for v in data]
    return data


class RedactingFilter(logging.Filter):
    """Rewrites each record's message and extras with secrets masked."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted, self.secrets)
            record.exc_info = None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, name, redact(value, self.secrets))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per event; every field is masked, the time and run id too.

    A field the formatter adds itself can share four characters with a secret
    (a year in a password), and masking the finished line could cut through
    the JSON's own quotes, so each value is masked before it is written.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "run_id": _run_id,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS and name not in event:
                event[name] = value
        if record.exc_text:
            event["exc"] = record.exc_text
        if self.secrets:
            event = redact_data(json.loads(json.dumps(event, default=str)), self.secrets)
        return json.dumps(event, default=str, ensure_ascii=False)


# Below this a file loads in a second or two and a bar would only flicker.
PROGRESS_MIN_BYTES = 4 << 20


def progress_reader(stream: Any, total: int, label: str) -> Any:
    """`stream`, drawing a progress bar over the bytes read when stderr is a terminal.

    Anywhere else (cron, a container's log) the stream comes back untouched, so
    machine-read output never holds anything but log events.
    """
    wanted = logging.getLogger("fleettickets").isEnabledFor(logging.INFO)
    if total < PROGRESS_MIN_BYTES or not wanted or not sys.stderr.isatty():
        return stream
    return _ProgressReader(stream, total, label)


class _ProgressReader:
    def __init__(self, stream: Any, total: int, label: str) -> None:
        self._stream = stream
        self._bar = click.progressbar(length=total, label=label, file=sys.stderr, width=30)
        self._bar.__enter__()

    def read(self, size: int = -1) -> bytes:
        chunk: bytes = self._stream.read(size)
        self._bar.update(len(chunk))
        return chunk

    def close(self) -> None:
        self._bar.__exit__(None, None, None)
        self._stream.close()


class TextFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def setup_logging(verbosity: int = 0, *, secrets: Iterable[str] = (), json_lines: bool | None = None) -> None:
    """Configure the root logger once per process; verbosity -1 quiet, 0 info, 1+ debug."""
    stream = sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    handler = logging.StreamHandler(stream)
    secrets = [s for s in secrets if s]
    handler.setFormatter(JsonFormatter(secrets) if json_lines else TextFormatter(secrets))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_fleettickets", False):
            root.removeHandler(old)
    handler._fleettickets = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.getLogger("fleettickets").setLevel(level)
    root.setLevel(logging.WARNING)
    # Chatty libraries stay at WARNING even with -v.
    for name in ("botocore", "boto3", "urllib3", "httpx", "httpcore", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)
