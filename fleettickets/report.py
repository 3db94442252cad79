"""Turning run results into what an operator reads: text lines or one JSON document."""

from __future__ import annotations

import json

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
    return "\n".join(lines)


def ingest_json(report: IngestReport) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False)
