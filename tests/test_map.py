"""`fleettickets map`: the written page, opened from file:// in headless Chromium.

Crafted tickets, gazetteer rows and daily rows are placed relative to the
pinned clock (TEST_NOW), and the page is asked about that instant, so every
count is exact at any hour. The page is opened with tiles off (`--tiles
none`): a closed network makes every tile request fail, and those failures
are checked apart, in the last test, so they never hide a real console error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from fleettickets import map_page
from fleettickets.settings import Settings
from tests.browser import chromium, console_errors, screenshot_rgb
from tests.crafted import ago, closed_ticket, insert, open_ticket
from tests.fix_clock import TEST_NOW
from tests.stream_tools import job_env, run_cli

NOW = TEST_NOW
SCRIPT_NAME = "Gate </script><script>window.injected = 1</script> & <b>Co</b>"
QUARRY, PIPELINE = (-1.284, 36.848), (-1.317, 36.896)

TICKETS: dict[str, dict[str, str]] = {
    "O1": open_ticket(cluster="Quarry Road", assigned_team="East 1", created_at_service=ago(NOW, hours=10)),
    "O2": open_ticket(
        cluster="Quarry Road", created_at_service=ago(NOW, hours=40), latitude="-1.300", longitude="36.820"
    ),  # at risk, placed by the feed
    "O3": open_ticket(
        cluster="Quarry Road", location_name=SCRIPT_NAME, created_at_service=ago(NOW, hours=60)
    ),  # breached, placed by its location
    "O4": open_ticket(cluster="Pipeline", created_at_service="", first_seen_at=""),  # no clock
    "O5": open_ticket(created_at_service=ago(NOW, hours=1)),  # nowhere to place it
    "C1": closed_ticket(
        cluster="Quarry Road",
        created_at_service=ago(NOW, hours=5),
        closed_at=ago(NOW, hours=2),
        mttr="3",
        sla_status="Compliant",
    ),
    "C2": closed_ticket(
        cluster="Pipeline",
        created_at_service=ago(NOW, days=4),
        closed_at=ago(NOW, days=3),
        mttr="24",
        sla_status="Compliant",
    ),
    "C3": closed_ticket(
        cluster="Pipeline",
        created_at_service=ago(NOW, days=12),
        closed_at=ago(NOW, days=10),
        mttr="48",
        sla_status="Breached",
    ),  # before the window
    "C4": closed_ticket(
        created_at_service=ago(NOW, days=2), closed_at=ago(NOW, days=1), mttr="20", sla_status="Compliant"
    ),  # unmapped
}
SNAPSHOT_DAYS = 5


@pytest.fixture(scope="module")
def map_db(module_db_url: str) -> str:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        clusters = [
            ("Quarry Road", *QUARRY, True, "ok"),
            ("Pipeline", *PIPELINE, False, "ok"),
            ("Ghost Town", None, None, False, "not_found"),
        ]
        for name, lat, lon, verified, status in clusters:
            conn.execute(
                "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude, verified, status) "
                "VALUES (tickets.place_key(%s), %s, %s, %s, %s, %s)",
                (name, name, lat, lon, verified, status),
            )
        locations = [
            (SCRIPT_NAME, -1.290, 36.850, "ok", None),
            ("Far Away Mast", -1.900, 37.300, "rejected", 84.2),
            ("Nowhere Hut", None, None, "not_found", None),
        ]
        for name, lat, lon, status, distance in locations:
            conn.execute(
                "INSERT INTO tickets.geo_locations (location_key, location_name, cluster_key, latitude, longitude,"
                " status, distance_km, query) VALUES (tickets.place_key(%s), %s, tickets.place_key('Quarry Road'),"
                " %s, %s, %s, %s, %s)",
                (name, name, lat, lon, status, distance, f"{name}, Nairobi, Kenya"),
            )
        for ticket_id, raw in TICKETS.items():
            insert(conn, ticket_id, raw)
        today = NOW.date()
        for back in range(SNAPSHOT_DAYS):
            day = today - timedelta(days=back)
            conn.execute(
                "INSERT INTO tickets.inc_daily_snapshot (snapshot_date, as_of, open_total, open_breached,"
                " open_on_first_seen_clock, opened, closed_today, open_by_cluster)"
                " VALUES (%s, %s, %s, %s, 0, 2, %s, '{}')",
                (day, NOW, 10 + back, back, back % 3),
            )
    return module_db_url


def dashboard(url: str, **args: Any) -> dict[str, Any]:
    named = ", ".join(f"{name} => %({name})s" for name in args)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT reporting.fn_inc_dashboard({named}, p_now => %(p_now)s)", {**args, "p_now": NOW}
        ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def page(map_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("map") / "map.html"
    map_page.write_map(Settings(database_url=map_db), out, window="last_7_days", tiles="none", now=NOW)
    return out


def embedded(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', text, re.S)
    assert found
    return json.loads(found.group(1))  # type: ignore[no-any-return]


# --- the file -----------------------------------------------------------------


@pytest.mark.clock
def test_page_embeds_the_dashboard_payload_unchanged(map_db: str, page: Path) -> None:
    data = embedded(page)
    assert data["payload"] == dashboard(map_db, p_window="last_7_days")
    assert sorted(f["id"] for f in data["payload"]["open"]["features"]) == ["O1", "O2", "O3", "O4"]
    assert [row["snapshot_date"] for row in data["backlog"]] == sorted(
        (NOW.date() - timedelta(days=back)).isoformat() for back in range(SNAPSHOT_DAYS)
    )
    assert data["tiles"] == {"url": None, "attribution": map_page.DEFAULT_ATTRIBUTION}


def test_a_name_holding_script_end_tags_stays_data(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    # Three script elements (data, Leaflet, the page's own): the name closes none of them.
    assert text.count("</script>") == 3
    located = [f for f in embedded(page)["payload"]["open"]["features"] if f["id"] == "O3"]
    assert located[0]["properties"]["location_name"] == SCRIPT_NAME
    assert located[0]["properties"]["geo_source"] == "location"


def test_the_page_needs_nothing_from_the_network(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    assert f'version="{map_page.LEAFLET_VERSION}"' in text  # the vendored Leaflet, inlined


@pytest.mark.clock
def test_map_command_writes_the_page_and_says_where(map_db: str, tmp_path: Path) -> None:
    out = tmp_path / "ops map.html"
    env = job_env(map_db, Settings(), now=NOW)
    result = run_cli(
        ["map", "--out", str(out), "--window", "last_7_days", "--cluster", "quarry road", "--tiles", "none"],
        env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out} (")
    assert "3 open and 1 closed tickets, 5 backlog days" in result.stdout
    data = embedded(out)
    assert data["payload"]["filters"]["cluster"] == "quarry road"
    assert [c["name"] for c in data["gazetteer"]["clusters"]] == ["Quarry Road"]
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left beside it


def test_map_command_bad_arguments_and_unwritable_out(map_db: str, tmp_path: Path) -> None:
    env = job_env(map_db, Settings(), now=NOW)
    bad = run_cli(["map", "--out", str(tmp_path / "m.html"), "--window", "last_week"], env, cwd=tmp_path)
    assert bad.returncode == 2
    # The choice is checked by the command line before anything is read or written.
    assert bad.stderr.strip().splitlines()[-1].startswith("Error: Invalid value for '--window': 'last_week'")
    missing = tmp_path / "no such folder" / "m.html"
    unwritable = run_cli(["map", "--out", str(missing)], env, cwd=tmp_path)
    assert unwritable.returncode == 1
    assert unwritable.stderr.startswith(f"Error: cannot write {missing}: ")
    assert not list(tmp_path.iterdir())


# --- in the browser -----------------------------------------------------------

COUNT_DRAWN = """
const [name, kind] = arguments;
const renderer = window.fleetMap.layers[name].renderer;
// The canvas renderer keeps every path it paints in _layers (Leaflet 1.9).
return Object.values(renderer._layers || {}).filter(l => l.options.kind === kind).length;
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def open_page(driver: Any, path: Path) -> list[str]:
    """Load the page until it has drawn; the console errors it logged on the way."""
    console_errors(driver)  # drain whatever an earlier page left
    driver.get(path.as_uri())
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-drawn')") == "true"
    )
    return console_errors(driver)


def drawn(driver: Any, layer: str, kind: str) -> int:
    return int(driver.execute_script(COUNT_DRAWN, layer, kind))


def toggle(driver: Any, label_start: str) -> None:
    for label in driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-overlays label"):
        if label.text.strip().startswith(label_start):
            label.find_element(By.TAG_NAME, "input").click()
            return
    raise AssertionError(f"no layer switch labelled {label_start!r}")


def test_page_opens_without_console_errors_and_draws_every_feature(browser: Any, page: Path) -> None:
    assert open_page(browser, page) == []
    payload = embedded(page)["payload"]
    assert drawn(browser, "open", "ticket") == len(payload["open"]["features"]) == 4
    assert drawn(browser, "closed", "ticket") == len(payload["closed"]["features"]) == 2
    assert drawn(browser, "review", "cluster") == 0  # switched off until asked for
    assert browser.execute_script("return window.injected === undefined && document.scripts.length") == 3


def test_header_counts_are_the_functions(browser: Any, map_db: str, page: Path) -> None:
    open_page(browser, page)
    payload = dashboard(map_db, p_window="last_7_days")
    shown = {
        el.get_attribute("data-count"): int(el.text) for el in browser.find_elements(By.CSS_SELECTOR, "[data-count]")
    }
    metrics = payload["metrics"]
    assert shown == {
        "open_total": metrics["open_total"],
        **metrics["open_by_sla_state"],
        "closed_in_window": metrics["closed_in_window"],
        "unmapped": payload["open"]["unmapped"] + payload["closed"]["unmapped"],
        "over_limit": payload["open"]["over_limit"] + payload["closed"]["over_limit"],
    }
    assert [shown[state] for state in ("within", "at_risk", "breached", "unknown")] == [2, 1, 1, 1]
    assert browser.find_element(By.ID, "newest-file").text == "no file applied yet"


def test_a_feature_cap_draws_only_what_the_payload_holds(browser: Any, map_db: str, tmp_path: Path) -> None:
    out = tmp_path / "capped.html"
    map_page.write_map(Settings(database_url=map_db), out, window="last_7_days", max_features=1, tiles=None, now=NOW)
    assert open_page(browser, out) == []
    assert drawn(browser, "open", "ticket") == 1
    assert drawn(browser, "closed", "ticket") == 1
    over = browser.find_element(By.CSS_SELECTOR, '[data-count="over_limit"]').text
    payload = dashboard(map_db, p_window="last_7_days", p_max_features=1)
    assert int(over) == payload["open"]["over_limit"] + payload["closed"]["over_limit"] == 3 + 1


def test_toggling_a_layer_hides_its_markers(browser: Any, page: Path) -> None:
    open_page(browser, page)
    toggle(browser, "Open tickets")
    assert drawn(browser, "open", "ticket") == 0
    assert drawn(browser, "closed", "ticket") == 2
    toggle(browser, "Open tickets")
    assert drawn(browser, "open", "ticket") == 4


def test_geocoding_review_shows_clusters_guards_and_locations(browser: Any, page: Path) -> None:
    open_page(browser, page)
    toggle(browser, "Geocoding review")
    assert drawn(browser, "review", "cluster") == 2  # Ghost Town has no point
    assert drawn(browser, "review", "guard") == 2
    assert drawn(browser, "review", "location") == 2  # ok and rejected; not_found has no point
    assert drawn(browser, "review", "link") == 1  # the rejected answer, tied to its cluster
    radius = browser.execute_script(
        "return Object.values(window.fleetMap.layers.review.renderer._layers)"
        ".filter(l => l.options.kind === 'guard').map(l => l.getRadius())"
    )
    assert radius == [25000, 25000]
    unplaced = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#unplaced-list li")]
    assert [line.split("\n")[0] for line in unplaced] == [
        "Ghost Town cluster, not found",
        "Nowhere Hut location, not found",
    ]


def test_a_popup_shows_the_ticket_with_its_name_as_text(browser: Any, page: Path) -> None:
    open_page(browser, page)
    text = browser.execute_script("""
        const layer = window.fleetMap.layers.open;
        const marker = Object.values(layer.renderer._layers).find(l => l.options.ticketId === 'O3');
        marker.openPopup();
        return document.querySelector('.leaflet-popup-content').innerText;
    """)
    assert text.startswith("O3\n")
    assert SCRIPT_NAME in text
    assert "point from\tlocation" in text and "SLA\tbreached" in text
    assert browser.execute_script("return window.injected === undefined")


def test_the_chart_has_one_point_per_snapshot_day(browser: Any, map_db: str, page: Path) -> None:
    open_page(browser, page)
    with psycopg.connect(map_db) as conn:
        days = [
            row[0].isoformat()
            for row in conn.execute("SELECT snapshot_date FROM tickets.inc_daily_snapshot ORDER BY 1")
        ]
    points = browser.find_elements(By.CSS_SELECTOR, "#backlog-chart circle.backlog-point")
    assert [p.get_attribute("data-day") for p in points] == days
    assert len(browser.find_elements(By.CSS_SELECTOR, "#backlog-chart rect.closure-bar")) >= len(days)


def map_pixels(driver: Any) -> tuple[int, int]:
    """(pixels in the map area, of those not the plain background), controls hidden."""
    driver.execute_script("document.querySelector('.leaflet-control-container').style.display = 'none'")
    box = driver.execute_script(
        "const r = document.getElementById('map').getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height].map(Math.round)"
    )
    background = tuple(
        int(v)
        for v in re.findall(
            r"\d+", driver.execute_script("return getComputedStyle(document.getElementById('map')).backgroundColor")
        )
    )[:3]
    _, _, rows = screenshot_rgb(driver)
    left, top, width, height = box
    total = other = 0
    for row in rows[top + 2 : top + height - 2]:
        for x in range(left + 2, left + width - 2, 2):
            total += 1
            if tuple(row[3 * x : 3 * x + 3]) != background:
                other += 1
    return total, other


def test_a_screenshot_of_the_map_is_not_blank(browser: Any, page: Path) -> None:
    open_page(browser, page)
    total, other = map_pixels(browser)
    assert total > 100_000 and other > 50  # six dots of 4-5 px radius, every other pixel sampled
    # The same measure sees a blank map as blank: every layer off.
    open_page(browser, page)
    toggle(browser, "Open tickets")
    toggle(browser, "Closed in window")
    assert map_pixels(browser)[1] == 0


def test_with_default_tiles_the_only_console_errors_are_failed_tiles(browser: Any, map_db: str, tmp_path: Path) -> None:
    out = tmp_path / "tiles.html"
    map_page.write_map(Settings(database_url=map_db), out, window="last_7_days", now=NOW)
    assert "tile.openstreetmap.org" in out.read_text(encoding="utf-8")
    errors = open_page(browser, out)
    assert drawn(browser, "open", "ticket") == 4
    assert all(message.startswith("https://tile.openstreetmap.org/") for message in errors), errors


def test_an_empty_database_gives_a_page_that_says_so(browser: Any, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    map_page.write_map(Settings(database_url=db_url), out, tiles="none", now=NOW)
    assert open_page(browser, out) == []
    assert drawn(browser, "open", "ticket") == drawn(browser, "closed", "ticket") == 0
    assert browser.find_element(By.ID, "content-lag").text == "unknown"
    assert "No daily backlog rows yet" in browser.find_element(By.ID, "backlog").text
    assert "Every gazetteer place has an answer." in browser.find_element(By.ID, "unplaced").text
    centre = browser.execute_script("const c = window.fleetMap.map.getCenter(); return [c.lat, c.lng]")
    assert centre == pytest.approx([-1.2864, 36.8172])  # Nairobi when there is nothing to place


# --- the trends section -----------------------------------------------------------

TREND_MARKS = {  # chart: (bar classes, line classes)
    "trend-counts": (("created-bar", "closed-bar"), ("backlog", "breached")),
    "trend-mttr": ((), ("mttr-median", "mttr-p90")),
    "trend-rates": ((), ("sla-rate", "c48-rate")),
}

BOX = "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];"


def trends_of(url: str, first: str, last: str, grain: str, cluster: str | None = None) -> tuple[Any, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT reporting.fn_inc_trends(p_from => %(f)s, p_to => %(t)s, p_grain => %(g)s, p_cluster => %(c)s,"
            " p_now => %(n)s), reporting.fn_team_closures(p_from => %(f)s, p_to => %(t)s, p_cluster => %(c)s,"
            " p_now => %(n)s)",
            {"f": first, "t": last, "g": grain, "c": cluster, "n": NOW},
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.clock
def test_trends_section_embeds_the_trend_functions_over_the_window(map_db: str, page: Path) -> None:
    data = embedded(page)
    window = data["payload"]["window"]
    trends, teams = trends_of(map_db, window["from"], window["to"], "day")
    assert data["trends"] == trends and data["teams"] == teams
    assert [p["period_start"] for p in trends["series"]] == [
        (NOW.date() - timedelta(days=back)).isoformat() for back in range(6, -1, -1)
    ]
    # The two days before the first daily row have no backlog: gaps, not zeros.
    assert [p["backlog_end"] for p in trends["series"]][:3] == [None, None, 14]
    closed = sum(p["closed"] for p in trends["series"])
    assert closed == sum(t["closed"] for t in teams["teams"]) == data["payload"]["metrics"]["closed_in_window"]


@pytest.mark.clock
def test_a_long_window_is_drawn_by_week(map_db: str, tmp_path: Path) -> None:
    out = tmp_path / "long.html"
    first, last = NOW.date() - timedelta(days=199), NOW.date()
    map_page.write_map(
        Settings(database_url=map_db), out, window="custom", date_from=first, date_to=last, tiles="none", now=NOW
    )
    data = embedded(out)
    assert data["trends"]["grain"] == "week"
    assert data["trends"] == trends_of(map_db, first.isoformat(), last.isoformat(), "week")[0]
    text = out.read_text(encoding="utf-8")
    assert text.count('class="created-bar" data-period') == len(data["trends"]["series"]) == 30
    assert "Trends per ISO week" in text


@pytest.mark.clock
def test_the_trends_section_as_a_person_sees_it(browser: Any, page: Path, tmp_path: Path) -> None:
    assert open_page(browser, page) == []
    data = embedded(page)
    series = data["trends"]["series"]
    section = browser.find_element(By.ID, "trends")
    assert section.is_displayed()
    browser.execute_script("arguments[0].scrollIntoView()", section)
    for chart_id, (bars, _lines) in TREND_MARKS.items():
        svg = browser.find_element(By.ID, chart_id)
        assert svg.is_displayed() and svg.size["width"] > 600
        for key in bars:  # one bar per period, zero-height ones included
            assert len(svg.find_elements(By.CSS_SELECTOR, f"rect.{key}[data-period]")) == len(series)
        plot = browser.execute_script(BOX, svg.find_element(By.CSS_SELECTOR, ".plot-area"))
        legend = browser.execute_script(BOX, svg.find_element(By.CSS_SELECTOR, ".legend"))
        assert not overlaps(legend, plot), chart_id
        frame = browser.execute_script(BOX, svg)
        labels = svg.find_elements(By.CSS_SELECTOR, "text")
        boxes = [browser.execute_script(BOX, label) for label in labels]
        for label, box in zip(labels, boxes, strict=True):
            assert label.text.strip(), chart_id
            assert float(label.value_of_css_property("font-size").removesuffix("px")) >= 10
            assert frame[0] <= box[0] and box[2] <= frame[2] and frame[1] <= box[1] and box[3] <= frame[3], label.text
        x_labels = [
            b for label, b in zip(labels, boxes, strict=True) if "x-label" in (label.get_attribute("class") or "")
        ]
        assert len(x_labels) >= 2
        assert not any(overlaps(a, b) for a, b in zip(x_labels, x_labels[1:], strict=False))
    counts = browser.find_element(By.ID, "trend-counts")
    backlog = [p.get_attribute("data-period") for p in counts.find_elements(By.CSS_SELECTOR, "circle.backlog")]
    assert backlog == [p["period_start"] for p in series if p["backlog_end"] is not None]
    assert len(backlog) == 5 and len(counts.find_elements(By.CSS_SELECTOR, "polyline.backlog")) == 1
    tip = counts.find_element(By.CSS_SELECTOR, "circle.backlog title").get_attribute("textContent")
    assert tip == f"{series[2]['period_start']}: 14 open at end"
    rows = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "#team-table tbody tr")
    ]
    assert [r[0] for r in rows] == [t["team"] or "(no team)" for t in data["teams"]["teams"]]
    assert [int(r[1]) for r in rows] == [t["closed"] for t in data["teams"]["teams"]]
    # Nothing was fetched: the page and its charts are one file.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    shot = tmp_path / "trends.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 0
    assert chart_pixels(browser, "trend-counts") > 500


def chart_pixels(driver: Any, chart_id: str) -> int:
    """Pixels inside the chart's plot area that are not white (every other one sampled)."""
    plot = driver.find_element(By.CSS_SELECTOR, f"#{chart_id} .plot-area")
    left, top, right, bottom = (round(v) for v in driver.execute_script(BOX, plot))
    _, _, rows = screenshot_rgb(driver)
    return sum(
        1
        for row in rows[top + 1 : bottom - 1]
        for x in range(left + 1, right - 1, 2)
        if tuple(row[3 * x : 3 * x + 3]) != (255, 255, 255)
    )
