"""Turning run results into what an operator reads: text lines or one JSON document."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fleettickets.adopt import AdoptReport
from fleettickets.clock import EAT, eat_text
from fleettickets.geocoding.gazetteer import MAX_DISTANCE_KM
from fleettickets.geocoding.gazetteer_file import ImportReport
from fleettickets.geocoding.runs import GeocodeReport
from fleettickets.history import HistoryCapture, RebuildReport
from fleettickets.ingest import IngestReport
from fleettickets.logs import redact_data
from fleettickets.status import BucketFacts, BucketFile, HistoryFacts, ReaderFacts, Run, Status, first_line


def ingest_text(report: IngestReport) -> str:
    verb = "applied" if report.applied else "would apply"
    lines = []
    for f in report.files:
        late = " (late)" if f.late else ""
        lines.append(
            f"{verb} {f.file_key}{late}: {f.inserted} new, {f.updated} changed, "
            f"{f.unchanged} unchanged, {f.stale} stale, "
            f"{f.alarms_dropped + f.sentinels_dropped} dropped, {f.rejected} rejected"
        )
        lines += [f"  line {line}: rejected: {reason}" for line, reason in f.rejections or []]
    for key in report.archived:
        lines.append(f"archived {key}")
    for key, reason in report.skipped:
        lines.append(f"skipped {key}: {reason}")
    lines += [f"problem: {p}" for p in report.problems]
    if not report.files:
        lines.append("nothing new to ingest" if report.applied else "nothing new would be ingested")
    else:
        t = report.totals()
        lines.append(
            f"total: {len(report.files)} files, {t['rows_read']} rows read, {t['inserted']} new, "
            f"{t['updated']} changed, {t['unchanged']} unchanged, {t['stale']} stale, "
            f"{t['alarms_dropped'] + t['sentinels_dropped']} dropped, {t['rejected']} rejected "
            f"in {report.seconds:.1f}s" + ("" if report.applied else " (dry run: nothing written)")
        )
        if report.history is not None:
            lines.append(capture_text(report.history, applied=True))
    return "\n".join(lines)


def ingest_summary(report: IngestReport) -> str:
    """One line for a heartbeat: the run's outcome and its totals."""
    t = report.totals()
    line = (
        f"ingest {'ok' if report.ok else 'failed'}: {len(report.files)} files, {t['inserted']} new, "
        f"{t['updated']} changed, {t['rejected']} rejected, {len(report.archived)} archived "
        f"in {report.seconds:.1f}s"
    )
    reasons = ([report.failed] if report.failed else []) + report.problems
    return line + ("; " + "; ".join(reasons) if reasons else "")


def adopt_text(report: AdoptReport) -> str:
    if report.state == "fresh":
        return "nothing to adopt: the database is empty; run `fleettickets migrate` to set it up"
    if report.state == "adopted":
        return "nothing to do: this database already has the fleettickets schema (run `fleettickets migrate` for pending migrations)"
    lines = [f"{section}: {text}" for section, text in report.lines]
    lines.append(
        "adopted: from now on use fleettickets migrate, ingest and status as on a fresh install"
        if report.applied
        else "(dry run: all of it was rolled back, nothing changed; run again with --apply)"
    )
    return "\n".join(lines)


def capture_text(capture: HistoryCapture, *, applied: bool) -> str:
    verb = "" if applied else "would be "
    return (
        f"history: {capture.versions_seen} new versions, {capture.closures_added} closures "
        f"{verb}recorded, {capture.days_refreshed} daily rows {verb}refreshed"
        + ("" if applied else " (dry run: nothing written)")
    )


def rebuild_text(report: RebuildReport) -> str:
    verb = "replayed" if report.applied else "would replay"
    lines = [f"{verb} {f.file_key}: {f.versions} versions, {f.inserted} new tickets" for f in report.replayed]
    assert report.capture is not None
    lines.append(
        f"{'rebuilt' if report.applied else 'would rebuild'} history from "
        f"{report.versions_total} versions: {report.days_total} daily rows, "
        f"{report.closures_total} closure events" + ("" if report.applied else " (dry run: nothing written)")
    )
    return "\n".join(lines)


def history_json(data: HistoryCapture | RebuildReport) -> str:
    return json.dumps({"ok": True, **data.as_dict()}, ensure_ascii=False)


def ingest_json(report: IngestReport, secrets: Iterable[str] = ()) -> str:
    return json.dumps(redact_data(report.as_dict(), secrets), ensure_ascii=False)


def ingest_failure_json(error: Exception, report: IngestReport | None, secrets: Iterable[str] = ()) -> str:
    """The `ingest --json` document of a run that failed, as far as it got."""
    if report is not None:
        document = report.as_dict()
    else:  # failed before it started: settings, connection, lock, arguments
        document = {
            "run_id": None,
            "applied": None,
            "ok": False,
            "files": [],
            "totals": {},
            "archived": [],
            "skipped": [],
            "problems": [],
            "history": None,
        }
    document.update(ok=False, failed=str(error))
    return json.dumps(redact_data(document, secrets), ensure_ascii=False)


def geocode_text(report: GeocodeReport) -> str:
    kind = report.kind
    done = sum(report.statuses.values())
    lines = []
    if not report.applied:
        lines.append(
            f"would geocode {report.places} {kind}s: {report.sent_queries} queries to send "
            f"to the provider, {report.from_cache} answered from earlier answers"
        )
        if report.sample:
            lines.append(f"sample queries (first {len(report.sample)}):")
            lines += [f"  {query}" for query in report.sample]
    elif report.places:
        s = report.statuses
        lines.append(
            f"geocoded {done} {kind}s with {report.provider}: {s['ok']} ok, "
            f"{s['rejected']} rejected (over {MAX_DISTANCE_KM:g} km from the cluster), "
            f"{s['not_found']} not found, {s['error']} failed; {report.from_cache} from "
            f"earlier answers, {report.requests_sent} requests sent, "
            f"{report.saved.tickets_moved} tickets re-placed"
        )
        if report.saved.kept_verified:
            lines.append(f"kept {report.saved.kept_verified} verified rows as they were")
    if report.stopped:
        lines.append(f"stopped early: {report.stopped}")
    if report.left:
        lines.append(f"{report.left} queries left for a later run")
    if report.no_place_name:
        lines.append(
            f"skipped {len(report.no_place_name)} location names with no place name left "
            f"once network codes are removed (e.g. {', '.join(report.no_place_name[:3])})"
        )
    if report.no_cluster_point:
        lines.append(
            f"skipped {len(report.no_cluster_point)} locations whose cluster has no "
            "coordinates yet (run `fleettickets geocode-clusters --apply` first)"
        )
    if not report.places:
        lines.append(f"no {kind}s need geocoding")
    if not report.applied:
        lines.append("(dry run: nothing sent to the provider, nothing written; add --apply)")
    return "\n".join(lines)


def import_json(result: ImportReport, secrets: Iterable[str] = ()) -> str:
    document = {
        "ok": True,
        "applied": result.applied,
        "rows": result.rows,
        "updated": [{"kind": k, "key": key} for k, key in result.changed],
        "added": [{"kind": k, "key": key} for k, key in result.inserted],
        "tickets_moved": result.tickets_moved,
    }
    return json.dumps(redact_data(document, secrets), ensure_ascii=False)


def geocode_json(report: GeocodeReport, secrets: Iterable[str] = ()) -> str:
    document = {
        "ok": True,
        "applied": report.applied,
        "run_id": report.run_id,
        "kind": report.kind,
        "provider": report.provider,
        "places": report.places,
        "queries": report.queries,
        "from_cache": report.from_cache,
        "sent_queries": report.sent_queries,
        "requests_sent": report.requests_sent,
        "left": report.left,
        "statuses": dict(report.statuses),
        "no_place_name": report.no_place_name,
        "no_cluster_point": report.no_cluster_point,
        "sample": report.sample,
        "stopped": report.stopped,
    }
    return json.dumps(redact_data(document, secrets), ensure_ascii=False)


def import_text(result: ImportReport) -> str:
    would = "" if result.applied else "would be "
    lines = [f"{kind} {key}: {would}updated" for kind, key in result.changed]
    lines += [f"{kind} {key}: {would}added" for kind, key in result.inserted]
    lines.append(
        f"{'imported' if result.applied else 'would import'} {result.rows} rows: {len(result.changed)} updated, "
        f"{len(result.inserted)} added, {result.tickets_moved} tickets re-placed"
        + ("" if result.applied else " (dry run: nothing written)")
    )
    return "\n".join(lines)


def status_json(status: Status, secrets: Iterable[str] = ()) -> str:
    document = {
        "healthy": status.healthy,
        "problems": status.problems,
        "thresholds": status.thresholds.as_dict(),
        **status.facts.as_dict(),
    }
    # Stored run errors may quote a driver's message: masked like any output.
    plain = json.loads(json.dumps(document, default=_json_value))
    return json.dumps(redact_data(plain, secrets), ensure_ascii=False, indent=2)


def status_line(status: Status) -> str:
    """One line for a health check: what is wrong, or that all is well."""
    if status.problems:
        return "unhealthy: " + "; ".join(status.problems)
    runs = status.facts.runs
    last = f"last run {runs[0].status} at {eat_text(runs[0].started_at)}" if runs else "no run yet"
    bucket = status.facts.bucket
    return f"healthy: {last}, {bucket.waiting + bucket.not_archived} file(s) waiting"


def status_text(status: Status) -> str:
    f = status.facts
    lines = [f"fleettickets status at {eat_text(f.now)}"]

    def add(label: str, text: str) -> None:
        lines.append(f"{label:<11}{text}")

    if f.schema.error:
        add("schema", f"error: {f.schema.error}")
    else:
        pending = ", ".join(f.schema.pending) or "none"
        add("schema", f"{f.schema.applied} migrations applied; pending: {pending}")
    mark = f.watermark
    if mark:
        add("watermark", f"{mark.source_max_key or '-'} ({eat_text(mark.source_max_ts)})")
        newest = mark.newest_applied
        if newest:
            archived = "archived" if newest.archived_at else "not archived yet"
            add("", f"newest applied: {newest.file_key} at {eat_text(newest.committed_at)}, {archived}")
    else:
        add("watermark", "nothing ingested yet")
    lines += _bucket_lines(f.bucket)
    lines += _run_lines(f.runs, f.ingest_running)
    if f.ingest_lock:
        add("lock", "ingest lock held by " + f.ingest_lock.describe())
    tickets = f.tickets
    if tickets:
        placed = ", ".join(f"{tickets.placed[k]} {k}" for k in ("feed", "location", "cluster", "none"))
        add("tickets", f"{tickets.total} total, {tickets.open} open; placed by {placed}")
    else:
        add("tickets", "no tickets table yet")
    gazetteer = [f"{name} {g.with_coordinates}/{g.rows} with coordinates" for name, g in f.gazetteer.items() if g]
    add("gazetteer", ", ".join(gazetteer) or "not installed")
    fresh = f.freshness
    if fresh.newest_file_ts:
        lag = f"; content {fresh.content_lag_hours} h behind it" if fresh.content_lag_hours is not None else ""
        add("freshness", f"newest file {eat_text(fresh.newest_file_ts)} ({fresh.newest_file_age_minutes} min ago){lag}")
        if fresh.newest_source_updated_at:
            add("", f"newest source_updated_at {eat_text(fresh.newest_source_updated_at)}")
    else:
        add("freshness", "no file applied yet")
    add("history", _history_text(f.history))
    add("dashboard", "installed" if f.dashboard_installed else "not installed")
    add("reader", _reader_text(f.reader))
    lines.append(status_line(status))
    return "\n".join(lines)


def _bucket_lines(bucket: BucketFacts) -> list[str]:
    if bucket.error:
        return [f"{'bucket':<11}{bucket.error}"]
    text = f"{bucket.waiting} new file(s) waiting in changes/"
    if bucket.oldest and bucket.newest:
        text += f" (oldest {_name(bucket.oldest)}, newest {_name(bucket.newest)})"
    extras = [
        f"{count} {label}"
        for count, label in (
            (bucket.not_archived, "applied, not archived"),
            (bucket.conflicts, "conflicting"),
            (bucket.skipped, "skipped (not change files)"),
        )
        if count
    ]
    return [f"{'bucket':<11}{text}" + ("; " + ", ".join(extras) if extras else "")]


def _run_lines(runs: tuple[Run, ...], running: bool) -> list[str]:
    if not runs:
        return [f"{'runs':<11}none recorded" + (" (an ingest is running now)" if running else "")]
    lines = [f"{'runs':<11}{'started':<21}{'result':<12}{'files':>6}{'rows':>8}{'seconds':>9}"]
    for run in runs:
        seconds = f"{run.seconds:.1f}" if run.seconds is not None else "-"
        lines.append(
            f"{'':<11}{eat_text(run.started_at):<21}{run.status:<12}"
            f"{run.files_applied:>6}{run.rows_changed:>8}{seconds:>9}"
        )
        if run.error:
            lines.append(f"{'':<13}{first_line(run.error)}")
    return lines


def _history_text(history: HistoryFacts) -> str:
    if not history.installed:
        return "not installed"
    if history.first_day:
        text = f"{history.days} day(s), {history.first_day} to {history.last_day}"
    else:
        text = "installed, no snapshot yet"
    if history.closure_events is not None:
        text += f"; {history.closure_events} closure events"
    if history.adopted:
        adopted = history.adopted
        text += (
            f"; adopted {eat_text(adopted.adopted_at)} at {adopted.watermark_key}, "
            f"{adopted.kept_days} captured day(s) kept as recorded"
        )
    return text


def _reader_text(reader: ReaderFacts) -> str:
    role = reader.role
    if not reader.exists:
        return (
            f"role {role} is missing: a superuser runs CREATE ROLE {role} NOLOGIN, then the schema "
            "owner runs SELECT tickets.setup_reader_role() (docs/operations.md)"
        )
    text = f"{role} exists"
    if not reader.granted:
        text += ", entry points not granted: run SELECT tickets.setup_reader_role() as the schema owner"
    timeout = reader.statement_timeout
    text += f", statement_timeout {timeout}" if timeout else ", no statement_timeout"
    logins = [
        f"{login.name} ({login.statement_timeout})"
        if login.statement_timeout
        else f"{login.name} (no statement_timeout: ALTER ROLE {login.name} SET statement_timeout = '5s')"
        for login in reader.logins
    ]
    return text + "; logins: " + (", ".join(logins) if logins else "none yet")


def _name(file: BucketFile) -> str:
    return file.key.rsplit("/", 1)[-1]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(EAT).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
