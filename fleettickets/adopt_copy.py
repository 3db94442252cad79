"""Adoption's copy step: deployed rows into the freshly migrated tables, by column name.

The deployed schemas sit aside (tickets_deployed, reporting_deployed) while
this runs. A column is copied when both tables have it and the current one
does not derive it; a column the current schema does not know is added as a
plain column and copied, so nothing unrecognised is lost; a table the
current schema does not know is moved across whole. Definitions (views,
functions, types) the current schema does not replace are refused, because
they read the deployed objects and cannot be carried over faithfully.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from fleettickets.errors import AdoptRefused

if TYPE_CHECKING:
    from fleettickets.adopt import AdoptReport

# tickets.inc columns as the deployed loader's documentation lists them: all but
# ticket_id, raw and ingested_at are derived from raw (or placed by the trigger).
DOCUMENTED_INC_COLUMNS = {
    "ticket_id",
    "raw",
    "normalized_status",
    "raw_status",
    "bucket",
    "is_actionable",
    "cluster",
    "region",
    "location_name",
    "assigned_team",
    "owner",
    "sla_status",
    "mttr",
    "created_at_service",
    "scheduled_at",
    "closed_at",
    "first_seen_at",
    "last_seen_at",
    "source_created_at",
    "source_updated_at",
    "latitude",
    "longitude",
    "geom",
    "geog",
    "geo_source",
    "ingested_at",
}
INC_COPIED = ("ticket_id", "raw", "ingested_at")
# Tables copied row by row, in this order: gazetteers and aliases before the
# tickets, so the geometry trigger places each ticket by the kept points.
COPIED_TABLES = (
    "cluster_aliases",
    "geo_clusters",
    "geo_locations",
    "import_meta",
    "inc",
    "crq",
    "closure_events",
    "inc_daily_snapshot",
)
# Relations the current schema replaces or rebuilds rather than copies.
REBUILT = {"schema_migrations", "inc_open_sla"}
# Where objects that depend on something live, by the catalog holding them.
OWNER_SCHEMA_SQL = """
WITH old AS (SELECT oid FROM pg_namespace WHERE nspname = ANY(%(aside)s)),
refs AS (
    SELECT 'pg_class'::regclass AS cls, c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM old)
    UNION ALL SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM old)
    UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM old)
    UNION ALL SELECT 'pg_namespace'::regclass, oid FROM old
), dependents AS (
    SELECT d.classid, d.objid, d.objsubid,
           CASE d.classid
               WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objid)
               WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.objid)
               WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.objid)
               WHEN 'pg_constraint'::regclass THEN (SELECT connamespace FROM pg_constraint WHERE oid = d.objid)
               WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite r
                                                   JOIN pg_class c ON c.oid = r.ev_class WHERE r.oid = d.objid)
               WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a
                                                   JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
               WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t
                                                   JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
           END AS nsp
      FROM pg_depend d JOIN refs ON d.refclassid = refs.cls AND d.refobjid = refs.oid
     WHERE d.deptype IN ('n', 'a')
)
SELECT DISTINCT pg_describe_object(classid, objid, objsubid)
  FROM dependents WHERE nsp IS NULL OR nsp NOT IN (SELECT oid FROM old)
 ORDER BY 1
"""


class Copier:
    def __init__(self, conn: psycopg.Connection, report: AdoptReport, aside: dict[str, str]) -> None:
        self.conn = conn
        self.report = report
        self.aside = aside
        self.old = aside["tickets"]

    # --- what is not recognised ---------------------------------------------------

    def refuse_unknown_definitions(self, documented_old_functions: set[str]) -> None:
        problems = []
        for schema, old in self.aside.items():
            for kind, name in self._rows(
                "SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' "
                "WHEN 'f' THEN 'foreign table' ELSE 'sequence' END, c.relname FROM pg_class c "
                "WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('v', 'm', 'f', 'S') "
                "AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')) "
                "AND to_regclass(quote_ident(%s) || '.' || quote_ident(c.relname)) IS NULL",
                (old, schema),
            ):
                problems.append(f"{kind} {schema}.{name} is not part of the current schema")
            for (name,) in self._rows(
                "SELECT DISTINCT p.proname FROM pg_proc p WHERE p.pronamespace = %s::regnamespace "
                "AND NOT EXISTS (SELECT FROM pg_proc n WHERE n.pronamespace = %s::regnamespace "
                "AND n.proname = p.proname)",
                (old, schema),
            ):
                if f"{schema}.{name}" not in documented_old_functions:
                    problems.append(f"function {schema}.{name} is not part of the current schema")
            for (name,) in self._rows(
                "SELECT t.typname FROM pg_type t WHERE t.typnamespace = %s::regnamespace "
                "AND t.typtype IN ('e', 'd', 'c') AND (t.typrelid = 0 OR EXISTS (SELECT FROM pg_class c "
                "WHERE c.oid = t.typrelid AND c.relkind = 'c')) "
                "AND to_regtype(quote_ident(%s) || '.' || quote_ident(t.typname)) IS NULL",
                (old, schema),
            ):
                problems.append(f"type {schema}.{name} is not part of the current schema")
        if problems:
            raise AdoptRefused(problems + ["rename or drop them, or move them to another schema, then run adopt again"])

    # --- copying ------------------------------------------------------------------

    def copy_all(self) -> None:
        for table in COPIED_TABLES:
            if self._exists(self.old, table):
                self._copy(table)
        self._move_unknown_tables()

    def _copy(self, table: str) -> None:
        old_cols = self._columns(self.old, table)
        new_cols = self._columns("tickets", table, insertable=True)
        known = set(self._columns("tickets", table)) | (DOCUMENTED_INC_COLUMNS if table in ("inc", "crq") else set())
        known |= {"captured_at"} if table == "inc_daily_snapshot" else set()
        unknown = [c for c in old_cols if c not in known]
        kept_whole = []
        if table == "inc_daily_snapshot" and unknown:
            # Its row type is what the capture functions return: no column can be added.
            kept_whole, unknown = unknown, []
        for column in unknown:
            self.conn.execute(
                sql.SQL("ALTER TABLE tickets.{} ADD COLUMN {} {}").format(
                    sql.Identifier(table), sql.Identifier(column), sql.SQL(self._type(table, column))
                )
            )
            self.report.add("kept, not recognised", f"column tickets.{table}.{column} (copied as a plain column)")
        overrides = self._overrides(table, old_cols)
        if table in ("inc", "crq"):
            targets = [c for c in INC_COPIED if c in old_cols] + ["source_file_ts", "source_key"]
        else:
            targets = [c for c in new_cols if c in overrides or c in old_cols]
        targets += unknown
        exprs = [overrides.get(c, sql.SQL("o.{}").format(sql.Identifier(c))) for c in targets]
        # The current schema seeds the well-known aliases; the deployed rows win over them.
        conflict = (
            sql.SQL(" ON CONFLICT (alias_key) DO UPDATE SET ({}) = ROW({})").format(
                sql.SQL(", ").join(map(sql.Identifier, targets)),
                sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in targets),
            )
            if table == "cluster_aliases"
            else sql.SQL("")
        )
        count = self.conn.execute(
            sql.SQL("INSERT INTO tickets.{} AS t ({}) SELECT {} FROM {}.{} o{}").format(
                sql.Identifier(table),
                sql.SQL(", ").join(map(sql.Identifier, targets)),
                sql.SQL(", ").join(exprs),
                sql.Identifier(self.old),
                sql.Identifier(table),
                conflict,
            )
        ).rowcount
        self._report_copy(table, count)
        if kept_whole:
            self._keep_whole(table, kept_whole)

    def _overrides(self, table: str, old_cols: list[str]) -> dict[str, sql.Composable]:
        has = set(old_cols).__contains__
        if table in ("inc", "crq"):
            # Adopted rows stand at the watermark: newer files win over them, older ones never do.
            return {
                "source_file_ts": sql.SQL("(SELECT watermark_ts FROM adopt_watermark)"),
                "source_key": sql.SQL("(SELECT 'adopted:' || watermark_key FROM adopt_watermark)"),
            }
        if table in ("geo_clusters", "geo_locations"):
            # A point moved by hand may live only in geom: the point is read from there.
            def coordinate(st: str, column: str) -> str:
                if has("geom"):
                    return f"coalesce({st}(o.geom), o.{column})" if has(column) else f"{st}(o.geom)"
                return f"o.{column}"

            lat, lon = coordinate("ST_Y", "latitude"), coordinate("ST_X", "longitude")
            status = "o.status" if has("status") else f"CASE WHEN {lat} IS NULL THEN 'not_found' ELSE 'ok' END"
            return {"latitude": sql.SQL(lat), "longitude": sql.SQL(lon), "status": sql.SQL(status)}
        if table == "closure_events":
            return {
                "source_key": sql.SQL("coalesce(o.source_key, 'adopted')" if has("source_key") else "'adopted'"),
                "first_observation": sql.SQL(
                    "coalesce(o.first_observation, false)" if has("first_observation") else "false"
                ),
            }
        if table == "inc_daily_snapshot":
            at = [f"o.{c}" for c in ("as_of", "captured_at") if has(c)]
            as_of = f"coalesce({', '.join(at + ['tickets.eat_day_end(o.snapshot_date)'])})"
            computed = [f"o.{c}" for c in ("computed_at", "captured_at") if has(c)]
            return {"as_of": sql.SQL(as_of), "computed_at": sql.SQL(f"coalesce({', '.join(computed + ['now()'])})")}
        return {}

    def _keep_whole(self, table: str, unknown: list[str]) -> None:
        """After its rows are converted, the deployed table itself moves across under another name."""
        kept = f"deployed_{table}"
        self.conn.execute(
            sql.SQL("ALTER TABLE {}.{} RENAME TO {}").format(
                sql.Identifier(self.old), sql.Identifier(table), sql.Identifier(kept)
            )
        )
        self._move(self.old, kept, "tickets")
        self.report.add(
            "kept, not recognised",
            f"columns {', '.join(unknown)} of the deployed {table}: the whole table kept as tickets.{kept}",
        )

    def _move_unknown_tables(self) -> None:
        for schema, old in self.aside.items():
            for (name,) in self._rows(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace "
                "AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "AND to_regclass(quote_ident(%s) || '.' || quote_ident(c.relname)) IS NULL "
                "AND NOT (c.relname = ANY(%s)) AND c.relname NOT LIKE 'deployed\\_%%'",
                (old, schema, list(REBUILT | set(COPIED_TABLES))),
            ):
                self._move(old, name, schema)
                count = self._count(schema, name)
                self.report.add("kept, not recognised", f"table {schema}.{name} ({count} rows, moved as it is)")

    def _move(self, old: str, table: str, schema: str) -> None:
        """SET SCHEMA, after renaming the indexes and sequences whose names are taken there."""
        for kind, name in self._rows(
            "SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'INDEX' END, c.relname FROM pg_class c "
            "WHERE c.relnamespace = %s::regnamespace AND (c.oid IN (SELECT indexrelid FROM pg_index "
            "WHERE indrelid = to_regclass(quote_ident(%s) || '.' || quote_ident(%s))) OR c.oid IN "
            "(SELECT objid FROM pg_depend WHERE refobjid = to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) "
            "AND classid = 'pg_class'::regclass AND deptype = 'a'))",
            (old, old, table, old, table),
        ):
            if self._exists(schema, name):
                self.conn.execute(
                    sql.SQL("ALTER {} {}.{} RENAME TO {}").format(
                        sql.SQL(kind), sql.Identifier(old), sql.Identifier(name), sql.Identifier(f"deployed_{name}")
                    )
                )
        self.conn.execute(
            sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                sql.Identifier(old), sql.Identifier(table), sql.Identifier(schema)
            )
        )

    def _report_copy(self, table: str, count: int) -> None:
        extra = ""
        if table in ("geo_clusters", "geo_locations"):
            verified = self._one(
                sql.SQL("SELECT count(*) FILTER (WHERE verified) FROM tickets.{}").format(sql.Identifier(table))
            )
            self.report.add("kept as is", f"tickets.{table}: {count} rows ({verified} verified), points unmoved")
            return
        if table in ("inc", "crq"):
            placed = self._one(sql.SQL("SELECT count(geom) FROM tickets.{}").format(sql.Identifier(table)))
            was = (
                self._one(
                    sql.SQL("SELECT count(geom) FROM {}.{}").format(sql.Identifier(self.old), sql.Identifier(table))
                )
                if "geom" in self._columns(self.old, table)
                else "?"
            )
            extra = f", raw unchanged, typed columns re-derived, {placed} placed (were {was})"
            self.report.add("converted", f"tickets.{table}: {count} tickets{extra}")
            return
        section = "converted" if table in ("closure_events", "inc_daily_snapshot") else "kept as is"
        self.report.add(section, f"tickets.{table}: {count} row{'' if count == 1 else 's'}")

    def report_history(self, watermark_key: str, file_ts: Any) -> None:
        versions = self._one(sql.SQL("SELECT count(*) FROM tickets.inc_versions"))
        days = self._one(sql.SQL("SELECT count(*) FROM tickets.history_kept_days"))
        self.report.add(
            "added",
            f"tickets.inc_versions: {versions} adopted versions, valid from {file_ts.isoformat()} ({watermark_key})",
        )
        self.report.add("added", f"history guard: {days} captured days and their closures kept as recorded")

    # --- grants and the old schemas -------------------------------------------------

    def copy_grants(self) -> None:
        """Other systems' roles keep the access they had to the objects of the same name."""
        grants = []
        for schema, old in self.aside.items():
            grants += [
                sql.SQL("GRANT {} ON SCHEMA {} TO {}").format(sql.SQL(p), sql.Identifier(schema), _role(r))
                for p, r in self._rows(SCHEMA_ACL_SQL, (old,))
            ]
            for name, kind, priv, role in self._rows(REL_ACL_SQL, (old,)):
                if self._exists(schema, name):
                    what = "SEQUENCE" if kind == "S" else "TABLE"
                    grants.append(
                        sql.SQL("GRANT {} ON {} {}.{} TO {}").format(
                            sql.SQL(priv), sql.SQL(what), sql.Identifier(schema), sql.Identifier(name), _role(role)
                        )
                    )
            for name, args, priv, role in self._rows(PROC_ACL_SQL, (old,)):
                # Identity arguments come from the catalog, already in SQL syntax.
                target = sql.SQL("{}.{}({})").format(sql.Identifier(schema), sql.Identifier(name), sql.SQL(args))
                if self._one(
                    sql.SQL("SELECT to_regprocedure({}) IS NOT NULL").format(sql.Literal(target.as_string(self.conn)))
                ):
                    grants.append(sql.SQL("GRANT {} ON FUNCTION {} TO {}").format(sql.SQL(priv), target, _role(role)))
            for name, args in self._rows(PROC_NOT_PUBLIC_SQL, (old,)):
                # Execution was taken from PUBLIC there: the new function starts with it.
                target = sql.SQL("{}.{}({})").format(sql.Identifier(schema), sql.Identifier(name), sql.SQL(args))
                if self._one(
                    sql.SQL("SELECT to_regprocedure({}) IS NOT NULL").format(sql.Literal(target.as_string(self.conn)))
                ):
                    grants.append(sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(target))
        for grant in grants:
            self.conn.execute(grant)
        if grants:
            self.report.add(
                "kept as is", f"{len(grants)} grants and revokes of other roles, on the objects of the same names"
            )

    def drop_deployed(self, *, apply: bool) -> None:
        outside = [r[0] for r in self._rows(OWNER_SCHEMA_SQL, {"aside": list(self.aside.values())})]
        if outside:
            raise AdoptRefused(
                [f"{o} depends on the deployed schema" for o in outside]
                + ["these objects would be lost with it; nothing was changed"]
            )
        present = [
            old
            for old in self.aside.values()
            if self._one(sql.SQL("SELECT count(*) FROM pg_namespace WHERE nspname = {}").format(sql.Literal(old)))
        ]
        for old in present if apply else []:
            self.conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(old)))
        self.report.add(
            "dropped",
            "the deployed definitions (functions, views, triggers), replaced by the "
            "current ones of the same names and signatures",
        )

    # --- catalog helpers --------------------------------------------------------------

    def _rows(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params).fetchall()

    def _one(self, query: sql.SQL | sql.Composed) -> Any:
        row = self.conn.execute(query).fetchone()
        return row[0] if row else None

    def _exists(self, schema: str, name: str) -> bool:
        row = self.conn.execute(
            "SELECT to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) IS NOT NULL", (schema, name)
        ).fetchone()
        return bool(row and row[0])

    def _count(self, schema: str, name: str) -> int:
        return int(
            self._one(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
        )

    def _columns(self, schema: str, table: str, *, insertable: bool = False) -> list[str]:
        rows = self._rows(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = %s::regnamespace AND c.relname = %s AND a.attnum > 0 "
            "AND NOT a.attisdropped AND (NOT %s OR (a.attgenerated = '' AND a.attidentity = '')) "
            "ORDER BY a.attnum",
            (schema, table, insertable),
        )
        return [r[0] for r in rows]

    def _type(self, table: str, column: str) -> str:
        return str(
            self._one(
                sql.SQL(
                    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                    "WHERE c.relnamespace = {}::regnamespace AND c.relname = {} AND a.attname = {}"
                ).format(sql.Literal(self.old), sql.Literal(table), sql.Literal(column))
            )
        )


def _role(role: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if role == "PUBLIC" else sql.Identifier(role)


_GRANTEE = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END"
SCHEMA_ACL_SQL = (
    "SELECT a.privilege_type, " + _GRANTEE + " FROM pg_namespace x, aclexplode(x.nspacl) a "
    "WHERE x.nspname = %s AND a.grantee <> x.nspowner"
)
REL_ACL_SQL = (
    "SELECT c.relname, c.relkind, a.privilege_type, " + _GRANTEE + " FROM pg_class c, "
    "aclexplode(c.relacl) a WHERE c.relnamespace = %s::regnamespace AND a.grantee <> c.relowner"
)
PROC_ACL_SQL = (
    "SELECT p.proname, oidvectortypes(p.proargtypes), a.privilege_type, "
    + _GRANTEE
    + " FROM pg_proc p, aclexplode(p.proacl) a WHERE p.pronamespace = %s::regnamespace "
    "AND a.grantee <> p.proowner"
)
PROC_NOT_PUBLIC_SQL = (
    "SELECT p.proname, oidvectortypes(p.proargtypes) FROM pg_proc p "
    "WHERE p.pronamespace = %s::regnamespace AND p.proacl IS NOT NULL AND NOT EXISTS "
    "(SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0)"
)
