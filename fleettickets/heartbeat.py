"""Heartbeat: tell a push monitor (Healthchecks.io convention) how a run ended.

The schedule itself can die, and then nothing that runs on it can complain;
a push monitor notices the missing ping instead. A ping that fails is a
warning, never a failed run: the monitor will raise the alarm on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from fleettickets.logs import redact
from fleettickets.settings import url_token_secrets

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
# Healthchecks.io keeps the first 100 kB of a body; a summary line never needs more.
MAX_BODY_CHARS = 10_000


def fail_url(url: str) -> str:
    """``<URL>/fail``, keeping any query string (an Uptime Kuma push token) after the path."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def ping(url: str | None, *, ok: bool, summary: str, secrets: Iterable[str] = ()) -> bool:
    """Send one ping (no retries) and say whether the monitor took it.

    Success is a GET of the URL; failure is a POST of the summary to
    ``<URL>/fail``. The summary is masked for secrets before it leaves.
    """
    if not url:
        return False
    import httpx  # only runs that ping pay for it

    secrets = [*secrets, *url_token_secrets(url)]
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=True) as client:
            if ok:
                response = client.get(url)
            else:
                body = redact(summary, secrets)[:MAX_BODY_CHARS]
                response = client.post(
                    fail_url(url), content=body.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
                )
        if response.status_code >= 400:
            logger.warning("heartbeat ping refused: HTTP %s", response.status_code)
            return False
    except httpx.HTTPError as exc:
        # The message may quote the URL; the log filter masks it, and so do we.
        logger.warning("heartbeat ping failed: %s", redact(f"{type(exc).__name__}: {exc}", secrets))
        return False
    logger.info("heartbeat ping sent (%s)", "success" if ok else "failure")
    return True
