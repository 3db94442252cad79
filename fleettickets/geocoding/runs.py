"""Geocoding runs: pick the places that need an answer, ask the provider, save in batches."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import click
import psycopg

from fleettickets.db import connect, job_lock
from fleettickets.errors import GeocoderAuthError, GeocoderError, GeocoderQuotaExhausted
from fleettickets.geocoding import gazetteer
from fleettickets.geocoding.gazetteer import MAX_DISTANCE_KM, Outcome, Place, Saved
from fleettickets.geocoding.providers import BiasBox, GeocodeAnswer, Geocoder, make_geocoder
from fleettickets.geocoding.tables import Kind
from fleettickets.logs import new_run_id
from fleettickets.migrate import require_current_schema
from fleettickets.settings import Settings

logger = logging.getLogger(__name__)

# Small enough that an interrupted backfill loses under a minute of requests
# (at 1/s), large enough that re-placing tickets is not done per place.
BATCH_SIZE = 20
SAMPLE_SIZE = 10
KM_PER_DEGREE = 111.32


@dataclass
class GeocodeReport:
    kind: Kind
    applied: bool
    run_id: str
    provider: str | None = None
    places: int = 0  # places that want an answer
    queries: int = 0  # distinct queries among them not answered before
    from_cache: int = 0  # places answered by an earlier answer to the same query
    sent_queries: int = 0  # queries asked this run (dry run: would ask)
    requests_sent: int = 0  # HTTP requests, retries included
    left: int = 0  # queries left for a later run (--limit or an early stop)
    saved: Saved = field(default_factory=Saved)
    no_place_name: list[str] = field(default_factory=list)
    no_cluster_point: list[str] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the run ended early but cleanly (quota)

    @property
    def statuses(self) -> Counter[str]:
        return self.saved.statuses


def geocode_clusters(settings: Settings, *, apply: bool, **options: Any) -> GeocodeReport:
    """One point per cluster (the coarse fallback): "<cluster>, <region>, Kenya"."""
    return _run("cluster", settings, apply=apply, **options)


def geocode_locations(settings: Settings, *, apply: bool, **options: Any) -> GeocodeReport:
    """Precise points for the locations of open tickets, kept within 25 km of their cluster."""
    return _run("location", settings, apply=apply, **options)


def _run(
    kind: Kind,
    settings: Settings,
    *,
    apply: bool,
    limit: int | None = None,
    retry_failed: bool = False,
    geocoder: Geocoder | None = None,
    progress: bool | None = None,
    batch_size: int = BATCH_SIZE,
) -> GeocodeReport:
    """Shared run: a dry run plans and sends nothing; `apply` asks and saves.

    `geocoder` replaces the client built from the settings (tests pass one with
    a fake clock). `progress` None shows a bar only when stderr is a terminal.
    """
    report = GeocodeReport(kind, apply, new_run_id())
    if apply and geocoder is None:
        settings.require("geocoder_provider")
        assert settings.geocoder_provider is not None
        geocoder = make_geocoder(
            settings.geocoder_provider,
            settings.geocoder_api_key,
            settings.geocoder_base_url,
            settings.geocoder_requests_per_second,
        )
    days = settings.geocoder_retry_failed_days
    with contextlib.ExitStack() as stack:
        if geocoder is not None and apply:
            stack.enter_context(geocoder)
            report.provider = geocoder.provider
        conn = stack.enter_context(connect(settings, autocommit=True))
        require_current_schema(conn)
        if apply:
            stack.enter_context(job_lock(conn, "geocode"))
        selection = gazetteer.select_places(conn, kind, retry_failed=retry_failed, retry_days=days)
        cached = gazetteer.cached_outcomes(conn, selection.places, retry_failed=retry_failed, retry_days=days)
        groups = _by_query(selection.places, {o.place.key for o in cached})
        to_ask = groups if limit is None else groups[: max(limit, 0)]
        report.places = len(selection.places)
        report.from_cache = len(cached)
        report.queries = len(groups)
        report.left = len(groups) - len(to_ask)
        report.no_place_name = selection.no_place_name
        report.no_cluster_point = selection.no_cluster_point
        report.sample = [query for query, _ in to_ask[:SAMPLE_SIZE]]
        if not apply:
            report.sent_queries = len(to_ask)
            return report
        assert geocoder is not None
        try:
            _ask(conn, geocoder, cached, to_ask, report, batch_size, progress)
        finally:
            report.requests_sent = geocoder.requests_sent
    return report


def _by_query(places: list[Place], answered: set[str]) -> list[tuple[str, list[Place]]]:
    """One entry per distinct query, in the places' order: each is asked once."""
    groups: dict[str, list[Place]] = {}
    for place in places:
        if place.key not in answered:
            groups.setdefault(place.query, []).append(place)
    return list(groups.items())


def _ask(
    conn: psycopg.Connection,
    geocoder: Geocoder,
    cached: list[Outcome],
    to_ask: list[tuple[str, list[Place]]],
    report: GeocodeReport,
    batch_size: int,
    progress: bool | None,
) -> None:
    pending = list(cached)

    def flush() -> None:
        report.saved.add(gazetteer.save_outcomes(conn, pending, MAX_DISTANCE_KM))
        pending.clear()

    attempted = 0
    try:
        with _progress(len(to_ask), f"geocoding {report.kind}s", progress) as advance:
            for query, places in to_ask:
                try:
                    answer = geocoder.lookup(query, bias_box=_bias_box(places[0]))
                except GeocoderQuotaExhausted as exc:
                    report.stopped = str(exc)
                    logger.warning("stopping early: %s", exc)
                    break
                except GeocoderAuthError:
                    raise
                except GeocoderError as exc:
                    # The place is noted as 'error' (never as "not found").
                    pending.extend(_failed(places, query, geocoder.provider, exc))
                    attempted += 1
                    raise
                attempted += 1
                report.sent_queries += 1
                pending.extend(_answered(places, answer))
                advance()
                if len(pending) >= batch_size:
                    flush()
    except (GeocoderError, KeyboardInterrupt) as exc:
        flush()  # everything answered before the failure is kept
        report.left += len(to_ask) - attempted
        if isinstance(exc, GeocoderError):
            raise type(exc)(f"{exc} {_kept(report)}") from None
        raise
    flush()
    report.left += len(to_ask) - attempted


def _answered(places: list[Place], answer: GeocodeAnswer) -> list[Outcome]:
    return [
        Outcome(
            place,
            answer.status,
            answer.provider,
            answer.query,
            answer.latitude,
            answer.longitude,
            answer.confidence,
            answer.display_name,
        )
        for place in places
    ]


def _failed(places: list[Place], query: str, provider: str, exc: Exception) -> list[Outcome]:
    return [Outcome(place, "error", provider, query, error=str(exc)) for place in places]


def _kept(report: GeocodeReport) -> str:
    done = sum(report.statuses.values()) - report.statuses["error"]
    return f"{done} {report.kind}s saved before the stop are kept; {report.left} queries are left for the next run."


def _bias_box(place: Place) -> BiasBox | None:
    """A box of about MAX_DISTANCE_KM around the cluster centroid, when known."""
    if place.centroid is None:
        return None
    lat, lon = place.centroid
    dlat = MAX_DISTANCE_KM / KM_PER_DEGREE
    dlon = MAX_DISTANCE_KM / (KM_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    return (
        round(lon - dlon, 5),
        round(max(lat - dlat, -90.0), 5),
        round(lon + dlon, 5),
        round(min(lat + dlat, 90.0), 5),
    )


@contextlib.contextmanager
def _progress(total: int, label: str, show: bool | None) -> Iterator[Callable[[], None]]:
    """A progress bar on a terminal; elsewhere a log line every few percent."""
    if show is None:
        show = sys.stderr.isatty()
    if show and total:
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield lambda: bar.update(1)
        return
    done = 0
    step = max(total // 20, 10)

    def advance() -> None:
        nonlocal done
        done += 1
        if done % step == 0 or done == total:
            logger.info("%s: %d of %d queries asked", label, done, total, extra={"done": done, "total": total})

    yield advance
