// The fleettickets map page: draws the embedded data with Leaflet on canvas
// renderers (one per layer, so 10,000 markers pan smoothly and each layer
// switches on and off alone). Ticket dots have no outline: stroking doubles
// the cost of every repaint.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("map-data").textContent);
  var payload = data.payload;
  var SLA_COLOURS = { within: "#2e7d32", at_risk: "#f0a000", breached: "#c62828", unknown: "#757575" };
  var PLACE_COLOURS = { ok: "#2e7d32", rejected: "#c62828", error: "#ef6c00", not_found: "#757575" };
  var CLOSED_COLOUR = "#1565c0";
  var CLUSTER_COLOUR = "#6a1b9a";

  var map = L.map("map", { preferCanvas: true, worldCopyJump: false });
  if (data.tiles.url) {
    L.tileLayer(data.tiles.url, { attribution: data.tiles.attribution, maxZoom: 19 }).addTo(map);
  }

  function row(table, label, value) {
    if (value === null || value === undefined || value === "") { return; }
    var tr = table.insertRow();
    tr.insertCell().textContent = label;
    tr.insertCell().textContent = String(value);
  }

  function popup(title, rows) {
    return function () {
      var box = document.createElement("div");
      var head = document.createElement("b");
      head.textContent = title;
      var table = document.createElement("table");
      table.className = "popup-table";
      rows.forEach(function (r) { row(table, r[0], r[1]); });
      box.appendChild(head);
      box.appendChild(table);
      return box;
    };
  }

  function latLng(feature) {
    var c = feature.geometry.coordinates;
    return [c[1], c[0]];
  }

  // Each layer paints in its own pane, stacked so open tickets stay on top of closed ones.
  function layer(name, zIndex) {
    map.createPane(name).style.zIndex = zIndex;
    return { name: name, group: L.layerGroup(), renderer: L.canvas({ pane: name }) };
  }

  var open = layer("open", 430);
  payload.open.features.forEach(function (f) {
    var p = f.properties;
    L.circleMarker(latLng(f), {
      renderer: open.renderer, kind: "ticket", ticketId: p.ticket_id, radius: 5, stroke: false,
      fillColor: SLA_COLOURS[p.sla_state] || SLA_COLOURS.unknown, fillOpacity: 0.9
    }).bindPopup(popup(p.ticket_id, [
      ["status", p.status], ["SLA", p.sla_state.replace("_", " ")], ["cluster", p.cluster],
      ["location", p.location_name], ["team", p.assigned_team], ["owner", p.owner],
      ["hours open", p.hours_open], ["clock", p.sla_clock_source || "none"], ["SLA due", p.sla_due_at],
      ["point from", p.geo_source]
    ])).addTo(open.group);
  });

  var closed = layer("closed", 420);
  payload.closed.features.forEach(function (f) {
    var p = f.properties;
    L.circleMarker(latLng(f), {
      renderer: closed.renderer, kind: "ticket", ticketId: p.ticket_id, radius: 4, stroke: false,
      fillColor: CLOSED_COLOUR, fillOpacity: 0.75
    }).bindPopup(popup(p.ticket_id, [
      ["status", p.status], ["closed at", p.closed_at], ["MTTR (min)", p.mttr_minutes],
      ["SLA (source)", p.sla_status], ["cluster", p.cluster], ["location", p.location_name],
      ["team", p.assigned_team], ["owner", p.owner], ["point from", p.geo_source]
    ])).addTo(closed.group);
  });

  // Geocoding review: what an operator checks before marking a place verified.
  var review = layer("review", 410);
  var clusterPoints = [];
  data.gazetteer.clusters.forEach(function (c) {
    if (c.lat === null) { return; }
    clusterPoints.push([c.lat, c.lon]);
    L.circle([c.lat, c.lon], {
      renderer: review.renderer, kind: "guard", radius: data.guard_km * 1000, interactive: false,
      color: CLUSTER_COLOUR, weight: 1, dashArray: "4 4", fill: false
    }).addTo(review.group);
    L.circleMarker([c.lat, c.lon], {
      renderer: review.renderer, kind: "cluster", radius: 7, weight: 2, color: CLUSTER_COLOUR,
      fillColor: CLUSTER_COLOUR, fillOpacity: c.verified ? 0.9 : 0.2
    }).bindPopup(popup("cluster " + c.name, [
      ["key", c.key], ["region", c.region], ["status", c.status],
      ["verified", c.verified ? "yes" : "no"], ["query", c.query], ["provider says", c.display_name]
    ])).addTo(review.group);
  });
  data.gazetteer.locations.forEach(function (l) {
    if (l.lat === null) { return; }
    var colour = PLACE_COLOURS[l.status] || PLACE_COLOURS.error;
    if (l.status === "rejected" && l.cluster_lat !== null) {
      L.polyline([[l.cluster_lat, l.cluster_lon], [l.lat, l.lon]], {
        renderer: review.renderer, kind: "link", color: colour, weight: 1, dashArray: "3 5", interactive: false
      }).addTo(review.group);
    }
    L.circleMarker([l.lat, l.lon], {
      renderer: review.renderer, kind: "location", radius: 5, weight: l.verified ? 1 : 2, color: colour,
      fillColor: colour, fillOpacity: l.verified ? 0.9 : 0.2
    }).bindPopup(popup("location " + l.name, [
      ["key", l.key], ["cluster", l.cluster_key], ["status", l.status],
      ["distance from cluster (km)", l.distance_km === null ? null : l.distance_km.toFixed(1)],
      ["verified", l.verified ? "yes" : "no"], ["query", l.query], ["provider says", l.display_name]
    ])).addTo(review.group);
  });

  var layers = { open: open, closed: closed, review: review };
  open.group.addTo(map);
  closed.group.addTo(map);
  var overlays = {};
  overlays["Open tickets by SLA state (" + payload.open.features.length + ")"] = open.group;
  overlays["Closed in window (" + payload.closed.features.length + ")"] = closed.group;
  overlays["Geocoding review (" + data.gazetteer.clusters.length + " clusters, " +
           data.gazetteer.locations.length + " locations)"] = review.group;
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);

  var legend = L.control({ position: "bottomright" });
  legend.onAdd = function () {
    var box = L.DomUtil.create("div", "leaflet-control-layers leaflet-control-layers-expanded");
    var items = [["within", SLA_COLOURS.within], ["at risk", SLA_COLOURS.at_risk],
                 ["breached", SLA_COLOURS.breached], ["no clock", SLA_COLOURS.unknown],
                 ["closed", CLOSED_COLOUR], ["cluster point", CLUSTER_COLOUR],
                 ["location ok", PLACE_COLOURS.ok], ["location rejected", PLACE_COLOURS.rejected]];
    items.forEach(function (item) {
      var line = L.DomUtil.create("div", "", box);
      var swatch = L.DomUtil.create("span", "legend-swatch", line);
      swatch.style.background = item[1];
      line.appendChild(document.createTextNode(item[0]));
    });
    return box;
  };
  legend.addTo(map);

  var points = payload.open.features.concat(payload.closed.features).map(latLng);
  var bounds = L.latLngBounds(points.length ? points : clusterPoints);
  if (bounds.isValid()) {
    map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15 });
  } else {
    map.setView([-1.2864, 36.8172], 10);  // Nairobi, when there is nothing to place
  }

  window.fleetMap = { map: map, layers: layers };
  // Canvas renderers paint on the next animation frame: mark "drawn" on the one after.
  requestAnimationFrame(function () {
    requestAnimationFrame(function () {
      performance.mark("map-drawn");
      document.body.setAttribute("data-drawn", "true");
    });
  });
})();
