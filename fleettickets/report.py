"""Turning run results into what an operator reads: text lines or one JSON document."""

from __future__ import annotations

import json

from fleettickets.history import HistoryCapture, RebuildReport
from fleettickets.ingest import IngestReport


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


def capture_text(capture: HistoryCapture, *, applied: bool) -> str:
    verb = "" if applied else "would be "
    return (
        f"history: {capture.versions_seen} new versions, {capture.closures_added} closures "
        f"{verb}recorded, {capture.days_refreshed} daily rows {verb}refreshed"
        + ("" if applied else " (dry run: nothing written)")
    )


def rebuild_text(report: RebuildReport) -> str:
    verb = "replayed" if report.applied else "would replay"
    lines = [f"{verb} {f.file_key}: {f.versions} versions, {f.inserted} new tickets"
             for f in report.replayed]  # fmt: skip
    assert report.capture is not None
    lines.append(
        f"{'rebuilt' if report.applied else 'would rebuild'} history from "
        f"{report.versions_total} versions: {report.days_total} daily rows, "
        f"{report.closures_total} closure events"
        + ("" if report.applied else " (dry run: nothing written)")
    )
    return "\n".join(lines)


def history_json(data: HistoryCapture | RebuildReport) -> str:
    return json.dumps(data.as_dict(), ensure_ascii=False)


def ingest_json(report: IngestReport) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False)
