"""The `fleettickets` command line: parses options and calls one library function per command."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from fleettickets import __version__, clock, defaults
from fleettickets.clock import EAT
from fleettickets.errors import EXIT_FAILURE, EXIT_USAGE, DispatchArgumentError, FleetTicketsError
from fleettickets.logs import redact, redact_data, setup_logging
from fleettickets.settings import Settings


class _Lazy:
    """A library module imported on first use: `--help` and `--version` never load
    psycopg, boto3 or httpx, and each command loads only what it calls."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(f"fleettickets.{self._name}"), attribute)


adoption = _Lazy("adopt")
dashboards = _Lazy("dashboard")
dispatching = _Lazy("dispatch")
gazetteer_csv = _Lazy("geocoding.gazetteer_file")
geocoding = _Lazy("geocoding.runs")
ingestion = _Lazy("ingest")
map_page = _Lazy("map_page")
migrations = _Lazy("migrate")
pipeline_status = _Lazy("status")
report = _Lazy("report")
ticket_history = _Lazy("history")
trend_reports = _Lazy("trends")

logger = logging.getLogger("fleettickets")


class App:
    """Per-invocation state; settings load lazily so `--help` never needs them."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity

    @cached_property
    def settings(self) -> Settings:
        settings = Settings.from_env()
        setup_logging(self.verbosity, secrets=settings.secrets())
        return settings


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fleettickets")
@click.option("-v", "--verbose", count=True, help="Debug detail in the log (also after the command).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors in the log (also after the command).")
@click.option(
    "--now",
    "pinned_now",
    metavar="INSTANT",
    envvar=clock.NOW_ENV,
    show_envvar=True,
    help="Act as if it were INSTANT (ISO 8601, EAT without an offset): history days, "
    "dashboard windows and health rules follow it. For previews, replays and tests; "
    "never in a schedule.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, pinned_now: str | None) -> None:
    """Load the INC ticket change stream into PostGIS for the live map and SLA picture.

    Settings come from the environment or a .env file in the working
    directory (see .env.example). Commands that write are dry runs unless
    given --apply, except two that apply at once and preview with --dry-run:
    migrate (as Flyway and yoyo do) and gazetteer import.
    """
    verbosity = -1 if quiet else verbose
    setup_logging(verbosity)
    if pinned_now:
        clock.pin(clock.parse_instant(pinned_now, source=f"--now ({clock.NOW_ENV})"))
    ctx.obj = App(verbosity)


@cli.command()
@click.option("--dry-run", is_flag=True, help="List pending migrations; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@pass_app
def migrate(app: App, dry_run: bool, as_json: bool) -> None:
    """Apply pending schema migrations (migrations/NN_name.sql) in order.

    It applies at once (no --apply needed, as Flyway and yoyo do); --dry-run
    only lists what it would apply.

    Each file runs in its own transaction and is recorded with its sha256 in
    tickets.schema_migrations; an applied file that has since changed is refused.

    Example: fleettickets migrate --dry-run
    """
    with _json_errors(as_json):
        plan = migrations.migrate_database(app.settings, dry_run=dry_run)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "applied": not dry_run,
                    "migrations": [m.filename for m in plan.pending],
                    "applied_meanwhile": list(plan.applied_meanwhile),
                    "already_applied": len(plan.applied),
                }
            )
        )
        return
    verb = "would apply" if dry_run else "applied"
    if plan.applied_meanwhile:
        click.echo(
            f"another migrate run applied {len(plan.applied_meanwhile)} migrations while "
            f"this one waited for its lock ({plan.applied_meanwhile[0]} to "
            f"{plan.applied_meanwhile[-1]})"
        )
    for migration in plan.pending:
        click.echo(f"{verb} {migration.filename}")
    if not plan.pending:
        total = len(plan.applied) + len(plan.applied_meanwhile)
        click.echo(f"schema is up to date ({total} migrations applied)")


@cli.command()
@click.option("--apply", is_flag=True, help="Convert the database (default: dry run, all of it rolled back).")
@pass_app
def adopt(app: App, apply: bool) -> None:
    """Take over the database the earlier loader set up, in one transaction.

    Prints the pg_dump command that backs up the tickets and reporting
    schemas, recognises the deployed schema by its ledger and documented
    objects, and prints what is kept, converted and added. Without --apply
    the whole conversion runs and is rolled back. A database that fits
    neither a fresh install nor the deployed loader is refused, unchanged.

    Example: fleettickets adopt --apply
    """
    click.echo(f"back up first: {adoption.backup_command(app.settings)}")
    click.echo(report.adopt_text(adoption.adopt(app.settings, apply=apply)))


@cli.command()
@click.option("--apply", is_flag=True, help="Write to the database and archive files (default: dry run).")
@click.option(
    "--from-bucket",
    is_flag=True,
    help="Read the bucket's changes/ folder: the default, so this does nothing; kept for old schedules.",
)
@click.option(
    "--inc-csv",
    "inc_csv",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Ingest this local change file instead of the bucket (repeatable, applied in the given order).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option(
    "--lock-wait",
    "lock_wait",
    type=click.FloatRange(min=0),
    default=defaults.DEFAULT_LOCK_WAIT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for a lock held by another run before exiting 75.",
)
@pass_app
def ingest(
    app: App, apply: bool, from_bucket: bool, inc_csv: tuple[Path, ...], as_json: bool, lock_wait: float
) -> None:
    """Apply every change file not yet ingested, oldest first, one transaction each.

    Without --apply nothing is written: each pending file is loaded inside a
    transaction that is rolled back, and the would-be counts are printed.

    Example: fleettickets ingest --apply
    """
    if inc_csv and from_bucket:
        raise click.UsageError("--inc-csv and --from-bucket are alternatives")
    try:
        result = ingestion.run_ingest(app.settings, apply=apply, local_files=list(inc_csv) or None, lock_wait=lock_wait)
    except FleetTicketsError as exc:
        # A scheduler parsing stdout gets its document whatever happened.
        if as_json:
            click.echo(report.ingest_failure_json(exc, exc.report, _known_secrets()))
        if apply:
            _heartbeat(app, "heartbeat_url", exc)
        raise
    except Exception as exc:
        if apply:
            _heartbeat(app, "heartbeat_url", exc)
        raise
    if as_json:
        click.echo(report.ingest_json(result, _known_secrets()))
    else:
        _echo(report.ingest_text(result))
    if apply:
        _heartbeat(app, "heartbeat_url", None if result.ok else result, report.ingest_summary(result))
    if not result.ok:
        sys.exit(EXIT_FAILURE)


def with_options(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """Several options shared by commands, applied in the order listed."""

    def apply(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


# The dashboard's filters, for `dashboard` and `map`: the same names and meanings.
window_options = [
    click.option("--cluster", help="Only this cluster (case is ignored)."),
    click.option(
        "--status", type=click.Choice(defaults.STATUSES, case_sensitive=False), help="Only this normalized status."
    ),
    click.option(
        "--window",
        type=click.Choice(defaults.WINDOWS, case_sensitive=False),
        default="today",
        show_default=True,
        help="EAT calendar days; custom takes --from and --to.",
    ),
    click.option(
        "--from",
        "date_from",
        type=click.DateTime(["%Y-%m-%d"]),
        metavar="DATE",
        help="First day of a custom window (EAT, inclusive).",
    ),
    click.option(
        "--to",
        "date_to",
        type=click.DateTime(["%Y-%m-%d"]),
        metavar="DATE",
        help="Last day of a custom window (EAT, inclusive).",
    ),
    click.option(
        "--max-features",
        type=int,
        default=defaults.DEFAULT_MAX_FEATURES,
        show_default=True,
        help="Cap on features per GeoJSON collection (per map layer).",
    ),
]


@cli.command()
@with_options(window_options)
@click.option("--json", "compact", is_flag=True, help="The database's text unchanged, on one line.")
@pass_app
def dashboard(
    app: App,
    cluster: str | None,
    status: str | None,
    window: str,
    date_from: datetime | None,
    date_to: datetime | None,
    max_features: int,
    compact: bool,
) -> None:
    """Print the dashboard payload, indented for reading or, with --json, as the map receives it.

    With --json the text of reporting.fn_inc_dashboard is printed unchanged
    (see docs/dashboard-api-contract.md); without it the same JSON is
    indented, its numbers as Python writes them. Filters combine with AND.

    Example: fleettickets dashboard --window custom --from 2026-06-01 --to 2026-06-15
    """
    with _json_errors(compact):
        text = dashboards.fetch_dashboard_text(
            app.settings,
            cluster=cluster,
            status=status,
            window=window,
            date_from=date_from.date() if date_from else None,
            date_to=date_to.date() if date_to else None,
            max_features=max_features,
        )
    click.echo(text if compact else json.dumps(json.loads(text), ensure_ascii=False, indent=2))


@cli.command()
@click.option(
    "--near", required=True, metavar="LAT,LNG", help="Where the vehicle is, latitude first (decimal degrees)."
)
@click.option(
    "--limit",
    type=int,
    default=defaults.DEFAULT_DISPATCH_LIMIT,
    show_default=True,
    help="How many candidates (at most 100).",
)
@click.option("--within-km", type=float, help="Only tickets within this radius (needed by --order urgency).")
@click.option("--cluster", help="Only this cluster (case is ignored).")
@click.option("--team", help="Only this assigned team (case is ignored).")
@click.option(
    "--order",
    type=click.Choice(defaults.ORDERS),
    default="distance",
    show_default=True,
    help="distance: nearest first; urgency: breached, then at_risk, then the rest, each nearest first.",
)
@click.option("--json", "as_json", is_flag=True, help="The payload as one line of JSON, unchanged.")
@pass_app
def dispatch(
    app: App,
    near: str,
    limit: int,
    within_km: float | None,
    cluster: str | None,
    team: str | None,
    order: str,
    as_json: bool,
) -> None:
    """Print the open tickets a vehicle at LAT,LNG could take next.

    The payload comes unchanged from reporting.fn_dispatch_candidates (see
    docs/dashboard-api-contract.md, "Dispatch"); distances are geodesic metres.

    Example: fleettickets dispatch --near -1.2921,36.8219 --within-km 5 --order urgency
    """
    lat, lng = dispatching.parse_near(near)
    within_m = dispatching.within_metres(within_km)
    if order == "urgency" and within_m is None:
        raise DispatchArgumentError("--order urgency needs --within-km: it ranks every ticket inside that radius")
    with _json_errors(as_json):
        payload = dispatching.fetch_candidates(
            app.settings, lat=lat, lng=lng, limit=limit, within_m=within_m, cluster=cluster, team=team, order=order
        )
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
    else:
        click.echo(dispatching.text_table(payload))


@cli.command("map")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="HTML file to write (replaced)."
)
@with_options(window_options)
@click.option(
    "--tiles",
    default=defaults.DEFAULT_TILES,
    show_default=True,
    help="Background tile URL template, or 'none' for a plain background.",
)
@click.option(
    "--tiles-attribution", default=defaults.DEFAULT_ATTRIBUTION, help="Attribution shown for the tiles (HTML)."
)
@pass_app
def map_command(
    app: App,
    out: Path,
    cluster: str | None,
    status: str | None,
    window: str,
    date_from: datetime | None,
    date_to: datetime | None,
    max_features: int,
    tiles: str,
    tiles_attribution: str,
) -> None:
    """Write the dashboard payload as one self-contained HTML map page.

    Open tickets by SLA state, closures in the window and the geocoding review
    (cluster points with their 25 km guard, location answers) as layers, the
    freshness and counts above, the daily backlog chart below. The page needs
    no server and no network; only the background tiles do.

    Example: fleettickets map --out map.html --window last_7_days
    """
    result = map_page.write_map(
        app.settings,
        out,
        cluster=cluster,
        status=status,
        window=window,
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
        max_features=max_features,
        tiles=tiles,
        attribution=tiles_attribution,
    )
    days = "1 backlog day" if result.backlog_days == 1 else f"{result.backlog_days} backlog days"
    click.echo(
        f"wrote {result.path} ({result.bytes_written / 1024:.0f} KB): {result.open_features} open "
        f"and {result.closed_features} closed tickets, {days}"
    )


range_options = [
    click.option("--from", "date_from", metavar="DATE", help="First EAT day (default: 29 days before --to)."),
    click.option("--to", "date_to", metavar="DATE", help="Last EAT day, inclusive (default: today)."),
    click.option("--cluster", help="Only this cluster (case is ignored)."),
    click.option(
        "--format",
        "output",
        default="table",
        show_default=True,
        metavar="table|json|csv",
        help="table for a person, csv for a spreadsheet, json: the payload unchanged.",
    ),
]


@cli.command()
@with_options(range_options)
@click.option(
    "--grain",
    default="day",
    show_default=True,
    metavar="day|week|month",
    help="One row per EAT day, ISO week (Monday first) or month; the ends are clipped to the range.",
)
@pass_app
def trends(app: App, date_from: str | None, date_to: str | None, cluster: str | None, output: str, grain: str) -> None:
    """Print created, closed, backlog, MTTR and SLA per period.

    From reporting.fn_inc_trends: each period counts exactly what the
    dashboard counts over the same days (docs/dashboard-api-contract.md).

    Example: fleettickets trends --from 2026-03-01 --to 2026-05-31 --grain week
    """
    req = trend_reports.request(date_from, date_to, grain=grain, cluster=cluster, output=output)
    click.echo(trend_reports.render_trends(trend_reports.fetch_trends(app.settings, req), output))


@cli.command()
@with_options(range_options)
@pass_app
def teams(app: App, date_from: str | None, date_to: str | None, cluster: str | None, output: str) -> None:
    """Print the closures of a range per team that closed them, and their open tickets now.

    From reporting.fn_team_closures: a closure stays with the team that held
    the ticket when it closed, whatever a later export says.

    Example: fleettickets teams --from 2026-05-01 --to 2026-05-31 --format csv
    """
    req = trend_reports.request(date_from, date_to, cluster=cluster, output=output)
    click.echo(trend_reports.render_team_closures(trend_reports.fetch_team_closures(app.settings, req), output))


apply_option = click.option(
    "--apply", is_flag=True, help="Ask the provider and write (default: dry run, nothing sent)."
)
retry_option = click.option(
    "--retry-failed",
    is_flag=True,
    help="Ask again for places answered 'not found' or 'rejected' "
    "(otherwise only once GEOCODER_RETRY_FAILED_DAYS have passed).",
)


json_option = click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")


@cli.command("geocode-clusters")
@apply_option
@retry_option
@json_option
@pass_app
def geocode_clusters(app: App, apply: bool, retry_failed: bool, as_json: bool) -> None:
    """Give every ticket cluster one point, the map's coarse fallback.

    Each cluster (aliases such as QOA = Quarry Road followed) is searched as
    "<cluster>, <region>, Kenya". Answers are cached in tickets.geo_clusters;
    a cluster already answered is not asked again. A spent daily quota ends
    the run early with status 0, keeping what was done.

    Example: fleettickets geocode-clusters --apply
    """
    _geocode_run(
        app, apply, as_json, lambda: geocoding.geocode_clusters(app.settings, apply=apply, retry_failed=retry_failed)
    )


@cli.command("geocode-locations")
@apply_option
@click.option("--limit", type=click.IntRange(min=0), help="Send at most N queries this run.")
@retry_option
@json_option
@pass_app
def geocode_locations(app: App, apply: bool, limit: int | None, retry_failed: bool, as_json: bool) -> None:
    """Give the locations of open tickets a precise point.

    Network codes are stripped from location_name (NW_KAYOLE_JUNCTION_FDT3 is
    searched as "Kayole Junction, <cluster>, <region>, Kenya"), the search is
    bounded to about 25 km around the cluster's point, and an answer farther
    than 25 km from it is stored as 'rejected', never mapped. Run
    geocode-clusters first. Answers are cached in tickets.geo_locations.

    Example: fleettickets geocode-locations --apply --limit 500
    """
    _geocode_run(
        app,
        apply,
        as_json,
        lambda: geocoding.geocode_locations(app.settings, apply=apply, limit=limit, retry_failed=retry_failed),
    )


def _geocode_run(app: App, apply: bool, as_json: bool, run: Callable[[], Any]) -> None:
    """Run one geocoding command, print its report and, for --apply, ping its monitor."""
    try:
        with _json_errors(as_json):
            result = run()
    except Exception as exc:
        if apply:
            _heartbeat(app, "heartbeat_geocode_url", exc)
        raise
    text = report.geocode_text(result)
    if as_json:
        click.echo(report.geocode_json(result, _known_secrets()))
    else:
        _echo(text)
    if apply:
        _heartbeat(app, "heartbeat_geocode_url", None, f"{_command_name()} ok: " + text.splitlines()[0])


@cli.group()
def gazetteer() -> None:
    """Review geocoded points in a spreadsheet: export, correct, verify, import.

    Example: fleettickets gazetteer export --out gazetteer.csv
    """


@gazetteer.command("export")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="CSV file to write (overwritten).",
)
@json_option
@pass_app
def gazetteer_export(app: App, out: Path, as_json: bool) -> None:
    """Write both gazetteers (clusters and locations) to one CSV file.

    Edit latitude, longitude and verified; leave the other columns as context.

    Example: fleettickets gazetteer export --out gazetteer.csv
    """
    with _json_errors(as_json):
        rows = gazetteer_csv.export_csv(app.settings, out)
    if as_json:
        click.echo(json.dumps({"ok": True, "rows": rows, "out": str(out)}, ensure_ascii=False))
    else:
        click.echo(f"exported {rows} rows to {out}")


@gazetteer.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and count the changes; write nothing.")
@json_option
@pass_app
def gazetteer_import(app: App, file: Path, dry_run: bool, as_json: bool) -> None:
    """Load a reviewed CSV back: corrected points and verified flags, all or nothing.

    It applies at once; --dry-run does the whole import and rolls it back.
    Verified rows are never overwritten by geocoding. Bad coordinates or
    unknown columns are listed and nothing is applied.

    Example: fleettickets gazetteer import gazetteer.csv
    """
    with _json_errors(as_json):
        result = gazetteer_csv.import_csv(app.settings, file, dry_run=dry_run)
    if as_json:
        click.echo(report.import_json(result, _known_secrets()))
    else:
        _echo(report.import_text(result))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print every fact as one JSON document.")
@click.option("--check", is_flag=True, help="Print one line and exit 1 if the pipeline is unhealthy.")
@click.option(
    "--max-pending-minutes",
    type=click.IntRange(min=1),
    help="Unhealthy when a file has waited in changes/ longer than this [STATUS_MAX_PENDING_MINUTES, default 45].",
)
@click.option(
    "--max-silence-minutes",
    type=click.IntRange(min=1),
    help="Unhealthy when no file has arrived for this long during export hours "
    "[STATUS_MAX_SILENCE_MINUTES, default 60].",
)
@click.option(
    "--export-hours", metavar="HH:MM-HH:MM", help="When the exporter writes, EAT [EXPORT_HOURS, default 06:00-20:00]."
)
@pass_app
def status(
    app: App,
    as_json: bool,
    check: bool,
    max_pending_minutes: int | None,
    max_silence_minutes: int | None,
    export_hours: str | None,
) -> None:
    """Show schema, watermark, waiting files, recent runs, tickets and freshness.

    With --check, print one line (healthy, or every reason it is not) and exit
    1 when the last run failed or never finished, a migration is pending, the
    bucket cannot be listed, a file has waited too long, or no file has
    arrived for too long during export hours. Read-only; takes no lock.

    Example: fleettickets status --check
    """
    with _json_errors(as_json):
        result = pipeline_status.report(
            app.settings,
            max_pending_minutes=max_pending_minutes,
            max_silence_minutes=max_silence_minutes,
            export_hours=export_hours,
        )
    if as_json:
        click.echo(report.status_json(result, _known_secrets()))
    else:
        _echo(report.status_line(result) if check else report.status_text(result))
    if check and not result.healthy:
        sys.exit(EXIT_FAILURE)


@cli.command()
@click.option(
    "--geocoder",
    "probe_geocoder",
    is_flag=True,
    help="Also send one request to the geocoding provider to check the key (uses quota).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the settings and checks as one JSON document.")
@pass_app
def doctor(app: App, probe_geocoder: bool, as_json: bool) -> None:
    """Check that this deployment is set up right, before the first run.

    Lists every setting (secrets masked) with where it came from, then one
    line per check: settings parse, database reachable and its version,
    PostGIS, migrations, the reader role, clock skew with the database, the
    bucket listable with files under its prefix, and (with --geocoder) the
    geocoder key. Exits 1 when any check fails. Reads only; takes no lock.

    Example: fleettickets doctor --geocoder
    """
    from fleettickets import doctor as doctoring

    # The settings may not load, yet their secrets stay out of the log.
    setup_logging(app.verbosity, secrets=_known_secrets())
    diagnosis = doctoring.diagnose(geocoder=probe_geocoder)
    if as_json:
        click.echo(json.dumps(redact_data(diagnosis.as_dict(), _known_secrets()), ensure_ascii=False))
    else:
        _echo(doctoring.doctor_text(diagnosis))
    if not diagnosis.ok:
        sys.exit(EXIT_FAILURE)


@cli.command("capture-history")
@click.option("--apply", is_flag=True, help="Write to the database (default: dry run).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@pass_app
def capture_history(app: App, apply: bool, as_json: bool) -> None:
    """Record new closures and refresh the daily backlog rows (ingest --apply does this too).

    Appends closure_events for versions ingested since the last capture and
    upserts inc_daily_snapshot from the oldest day they touched through today.

    Example: fleettickets capture-history --apply
    """
    with _json_errors(as_json):
        result = ticket_history.capture_history(app.settings, apply=apply)
    click.echo(report.history_json(result) if as_json else report.capture_text(result, applied=apply))


@cli.group()
def history() -> None:
    """Ticket history: rebuild closures and daily backlog, read tickets as of an instant.

    See docs/history.md for what a version, a closure and a daily row mean.
    """


@history.command()
@click.option("--apply", is_flag=True, help="Write to the database (default: dry run).")
@click.option(
    "--from-processed", is_flag=True, help="Replay the bucket's processed/ files first (the default, said explicitly)."
)
@click.option("--no-replay", is_flag=True, help="Do not read processed/ files from the bucket.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@pass_app
def rebuild(app: App, apply: bool, from_processed: bool, no_replay: bool, as_json: bool) -> None:
    """Recompute closure_events and every daily row from the first version to today.

    First replays (read-only) the bucket's processed/ files older than the
    first file this database ingested, so their versions exist. On an
    adopted database the days and closures the earlier loader captured are
    kept as recorded; the replay fills the days it never captured.

    Example: fleettickets history rebuild --from-processed --apply
    """
    if from_processed and no_replay:
        raise click.UsageError("--from-processed and --no-replay are alternatives")
    with _json_errors(as_json):
        result = ticket_history.rebuild_history(app.settings, apply=apply, replay=not no_replay)
    click.echo(report.history_json(result) if as_json else report.rebuild_text(result))


@history.command("as-of")
@click.argument("at", metavar="TIME", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]))
@click.option("--ticket", "ticket_id", help="Only this ticket.")
@pass_app
def as_of(app: App, at: datetime, ticket_id: str | None) -> None:
    """Print every ticket (or one) as it stood at TIME (EAT wall-clock), one JSON line each.

    TIME is YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or YYYY-MM-DDTHH:MM:SS.

    Example: fleettickets history as-of "2026-06-16 18:00:00" --ticket WOT0715527
    """
    for row in ticket_history.as_of(app.settings, at.replace(tzinfo=EAT), ticket_id):
        click.echo(json.dumps(row, default=str, ensure_ascii=False))


def _more_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    app = ctx.find_object(App)
    if value and app is not None:
        app.verbosity = max(app.verbosity, 0) + value
        setup_logging(app.verbosity)


def _quieter(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    app = ctx.find_object(App)
    if value and app is not None:
        app.verbosity = -1
        setup_logging(app.verbosity)


def _accept_verbosity_after_the_command(group: click.Group) -> None:
    """`fleettickets ingest -v` means what `fleettickets -v ingest` does."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_verbosity_after_the_command(command)
            continue
        command.params += [
            click.Option(
                ["-v", "--verbose"],
                count=True,
                expose_value=False,
                callback=_more_verbose,
                help="Debug detail in the log.",
            ),
            click.Option(
                ["-q", "--quiet"],
                is_flag=True,
                expose_value=False,
                callback=_quieter,
                help="Only warnings and errors in the log.",
            ),
        ]


_accept_verbosity_after_the_command(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: library errors become one line on stderr and a documented exit status."""
    try:
        cli.main(args=argv, prog_name="fleettickets", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except FleetTicketsError as exc:
        click.echo(f"Error: {redact(str(exc), _known_secrets())}", err=True)
        sys.exit(exc.exit_status)
    except Exception as exc:
        if _is_database_error(exc):
            # Expected failures are FleetTicketsError; this is the last line of defence.
            message = f"database error: {type(exc).__name__}: {str(exc).strip()}"
            click.echo(f"Error: {redact(message, _known_secrets())}", err=True)
            sys.exit(EXIT_FAILURE)
        # Unforeseen: one line, never a traceback that could quote a secret.
        logger.debug("unexpected failure", exc_info=True)
        message = f"unexpected {type(exc).__name__}: {str(exc).strip()}"
        click.echo(f"Error: {redact(message, _known_secrets())}", err=True)
        sys.exit(EXIT_FAILURE)
    sys.exit(0)


def _heartbeat(app: App, url_setting: str, failure: object, summary: str = "") -> None:
    """Ping the run's push monitor, if one is set: success when `failure` is None.

    A run that found the lock held pings nothing: the run holding it is
    alive and pings for itself. Settings that do not load have no URL to ping.
    """
    from fleettickets import heartbeat
    from fleettickets.errors import LockBusy

    if isinstance(failure, LockBusy):
        return
    try:
        url = getattr(app.settings, url_setting)
    except FleetTicketsError:
        return
    if isinstance(failure, BaseException):
        summary = f"{_command_name()} failed: {failure}"
    heartbeat.ping(url, ok=failure is None, summary=summary, secrets=_known_secrets())


def _command_name() -> str:
    """The running command's name, as the operator typed it."""
    return click.get_current_context().command_path.removeprefix("fleettickets ").strip() or "fleettickets"


@contextlib.contextmanager
def _json_errors(as_json: bool) -> Iterator[None]:
    """With --json, a failure still prints a JSON document carrying the error: stdout stays parseable."""
    try:
        yield
    except Exception as exc:
        if as_json:
            known = isinstance(exc, FleetTicketsError)
            error = str(exc) if known else f"{type(exc).__name__}: {str(exc).strip()}"
            click.echo(json.dumps({"ok": False, "failed": redact(error, _known_secrets())}, ensure_ascii=False))
        raise


def _is_database_error(exc: BaseException) -> bool:
    """A psycopg error, told without importing psycopg: a command that raised one has loaded it."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def _echo(text: str) -> None:
    """Print a report: it may quote a database or provider message, so secrets are masked."""
    click.echo(redact(text, _known_secrets()))


def _known_secrets() -> list[str]:
    """The configured secrets, read even when the settings themselves are malformed."""
    return Settings.secrets_in_environment()
