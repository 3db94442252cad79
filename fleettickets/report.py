"""Turning run results into what an operator reads: text lines or one JSON document."""

from __future__ import annotations

import json

from fleettickets.gazetteer import MAX_DISTANCE_KM
from fleettickets.gazetteer_csv import ImportReport
from fleettickets.geocoding import GeocodeReport
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


def import_text(result: ImportReport) -> str:
    lines = [f"{kind} {key}: updated" for kind, key in result.changed]
    lines += [f"{kind} {key}: added" for kind, key in result.inserted]
    lines.append(
        f"imported {result.rows} rows: {len(result.changed)} updated, "
        f"{len(result.inserted)} added, {result.tickets_moved} tickets re-placed"
    )
    return "\n".join(lines)
