/* fiqa-bench leaderboard: renders the boards embedded in #leaderboard-data, sorts and filters them, and keeps
 * the view (filters, sort column, order) in the URL hash so a view can be linked and restored.
 * Vanilla JS, no dependency, no network: the page works from file:// and from any static host.
 * Every value is inserted with textContent (never innerHTML), so no results file can inject markup. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("leaderboard-data").textContent);
  var DIMS = ["protocol", "backbone", "selection", "method", "metric"];
  var LEGENDS = {protocol: "protocol", backbone: "FR backbone", selection: "selection", method: "method",
                 metric: "metric"};
  var GROUPS = DATA.filters.group || [];  // "grouping=group" of the runs' groups files (fiqa-bench groups)
  var state = {filters: {}, sort: null, order: null, group: ""};

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // ------------------------------------------------------------------ URL <-> state
  function knownSort(id) {
    if (id === "method" || id === "cost") { return true; }
    return DATA.boards.some(function (b) { return columnOf(b, id) !== null; });
  }

  function readURL() {
    var raw = location.hash.replace(/^#/, "");
    if (!raw) { raw = location.search.replace(/^\?/, ""); }  // ?query links work on static hosts too
    var params = new URLSearchParams(raw);
    DIMS.forEach(function (d) {
      var asked = params.getAll(d);  // values this site does not have are dropped; order as the filters list them
      state.filters[d] = (DATA.filters[d] || []).filter(function (v) { return asked.indexOf(v) >= 0; });
    });
    var sort = params.get("sort");
    state.sort = sort && knownSort(sort) ? sort : null;
    var group = params.get("group");
    state.group = group && GROUPS.indexOf(group) >= 0 ? group : "";
    var order = params.get("order");
    state.order = state.sort && (order === "asc" || order === "desc") ? order : null;
  }

  function viewQuery() {
    var params = new URLSearchParams();
    DIMS.forEach(function (d) { state.filters[d].forEach(function (v) { params.append(d, v); }); });
    if (state.sort) { params.set("sort", state.sort); }
    if (state.order) { params.set("order", state.order); }
    if (state.group) { params.set("group", state.group); }
    return params.toString();
  }

  function writeURL() {
    var q = viewQuery();
    // a view given as ?query moves to the hash (else clearing the filters would leave the old view in the query)
    var search = new URLSearchParams(location.search.replace(/^\?/, ""));
    var ours = DIMS.concat(["sort", "order", "group"]).some(function (k) { return search.has(k); });
    var url = location.pathname + (ours ? "" : location.search) + (q ? "#" + q : "");
    try {
      history.replaceState(null, "", url);
    } catch (e) {  // some hosts forbid it: a plain hash change does the same
      location.hash = q;
    }
    var link = document.getElementById("permalink");
    link.setAttribute("href", q ? "#" + q : "#");
    link.textContent = location.href;
  }

  // ------------------------------------------------------------------ filters
  function allowed(dim, value) {
    var chosen = state.filters[dim];
    return chosen.length === 0 || chosen.indexOf(value) >= 0;
  }

  function metricLabel(key) {
    for (var i = 0; i < DATA.metrics.length; i++) {
      if (DATA.metrics[i].key === key) { return DATA.metrics[i].label; }
    }
    return key;
  }

  function buildFilters() {
    var form = document.getElementById("filters");
    form.textContent = "";
    DIMS.forEach(function (d) {
      var values = DATA.filters[d] || [];
      var fs = el("fieldset", {"data-filter": d});
      fs.appendChild(el("legend", {}, LEGENDS[d]));
      values.forEach(function (v) {
        var label = el("label");
        var box = el("input", {type: "checkbox", name: d, value: v});
        box.addEventListener("change", onFilterChange);
        label.appendChild(box);
        label.appendChild(document.createTextNode(" " + (d === "metric" ? metricLabel(v) : v)));
        fs.appendChild(label);
      });
      form.appendChild(fs);
    });
    if (GROUPS.length) {
      // one group at a time: the rows of the runs with per-group numbers, each showing that group's comparisons
      var gs = el("fieldset", {"data-filter": "group"});
      gs.appendChild(el("legend", {}, "group"));
      var select = el("select", {id: "group-filter", name: "group"});
      select.appendChild(el("option", {value: ""}, "all comparisons"));
      GROUPS.forEach(function (g) { select.appendChild(el("option", {value: g}, g)); });
      select.addEventListener("change", function () { state.group = select.value; update(); });
      gs.appendChild(select);
      form.appendChild(gs);
    }
    var clear = el("button", {type: "button", id: "clear-filters"}, "show all");
    clear.addEventListener("click", function () {
      DIMS.forEach(function (d) { state.filters[d] = []; });
      state.sort = null;
      state.order = null;
      state.group = "";
      update();
    });
    form.appendChild(clear);
  }

  function syncFilters() {
    var boxes = document.querySelectorAll("#filters input[type=checkbox]");
    Array.prototype.forEach.call(boxes, function (box) {
      box.checked = state.filters[box.name].indexOf(box.value) >= 0;
    });
    var select = document.getElementById("group-filter");
    if (select) { select.value = state.group; }
  }

  function onFilterChange() {
    DIMS.forEach(function (d) {
      var boxes = document.querySelectorAll("#filters input[name='" + d + "']");
      state.filters[d] = Array.prototype.filter.call(boxes, function (b) { return b.checked; })
        .map(function (b) { return b.value; });
    });
    update();
  }

  // ------------------------------------------------------------------ sorting
  function columnOf(board, id) {
    for (var i = 0; i < board.columns.length; i++) {
      if (board.columns[i].id === id) { return board.columns[i]; }
    }
    return null;
  }

  function sortSpec(board, columns) {
    // The column and direction the board is sorted by: the view's, else its first metric column, best first.
    var id = state.sort;
    var col = id && id !== "method" && id !== "cost" ? columnOf(board, id) : null;
    if (id && (id === "method" || id === "cost" || (col && columns.indexOf(col) >= 0))) {
      var best = col ? (col.higher_is_better ? "desc" : "asc") : "asc";
      return {id: id, col: col, order: state.order || best};
    }
    if (columns.length === 0) { return {id: "method", col: null, order: "asc"}; }
    col = columns[0];
    return {id: col.id, col: col, order: col.higher_is_better ? "desc" : "asc"};
  }

  function sortValue(row, spec) {
    if (spec.id === "method") { return row.label; }
    if (spec.id === "cost") { return row.cost && row.cost.ms_single !== null ? row.cost.ms_single : null; }
    var cell = row.cells[spec.id];
    return cell && cell.v !== null && cell.v !== undefined ? cell.v : null;
  }

  function compareRows(spec) {
    var sign = spec.order === "desc" ? -1 : 1;
    return function (a, b) {
      var va = sortValue(a, spec), vb = sortValue(b, spec);
      if (va === null && vb !== null) { return 1; }  // missing values always last
      if (vb === null && va !== null) { return -1; }
      if (va !== null && vb !== null && va !== vb) {
        if (typeof va === "string") { return sign * (va < vb ? -1 : 1); }
        return sign * (va - vb);
      }
      if (a.label !== b.label) { return a.label < b.label ? -1 : 1; }
      return a.id < b.id ? -1 : (a.id > b.id ? 1 : 0);
    };
  }

  function onSort(id, board, spec) {
    // Clicking the column a board is sorted by reverses it; another column sorts best first.
    var col = columnOf(board, id);
    if (spec.id === id) {
      state.order = spec.order === "asc" ? "desc" : "asc";
    } else {
      state.order = col ? (col.higher_is_better ? "desc" : "asc") : "asc";
    }
    state.sort = id;
    update();
  }

  // ------------------------------------------------------------------ rendering
  function points(x) { return x >= 0.01 ? x.toFixed(2) : x.toPrecision(2); }

  function pct(level) { return level <= 1 ? Math.round(level * 1000) / 10 : level; }

  function boardMeta(board) {
    var parts = [board.detail];
    var c = board.counts || {};
    if (c.genuine !== undefined) {
      var s = c.genuine + " genuine, " + c.impostor + " impostor pairs";
      if (c.subjects !== undefined) { s += ", " + c.subjects + " subjects"; }
      var w = board.worth;  // what one comparison is worth, as the board's metric declares it
      if (w) {
        var n = w.counts.reduce(function (sum, key) { return sum + (c[key] || 0); }, 0);
        if (n > 0) { s += "; one " + w.pair + " is " + points(100 / n) + " points of " + w.of; }
      }
      parts.push(s);
    }
    var b = board.bootstrap;
    if (b) {
      var unit = String(b.unit || "?");
      parts.push(pct(b.level) + "% " + (b.method || "") + " bootstrap intervals over " + unit +
                 (/s$/.test(unit) ? "" : "s") +
                 ", B = " + b.B + ", seed " + b.seed);
    } else {
      parts.push("no intervals in these results files");
    }
    return parts.join(" · ");
  }

  function headerCell(board, spec, id, text, extra) {
    var th = el("th", {scope: "col", "data-col": id});
    if (spec.id === id) { th.setAttribute("aria-sort", spec.order === "asc" ? "ascending" : "descending"); }
    var button = el("button", {type: "button"}, text);
    button.addEventListener("click", function () { onSort(id, board, spec); });
    th.appendChild(button);
    if (extra) { th.appendChild(el("span", {"class": "dir"}, " " + extra)); }
    return th;
  }

  function metricCell(cell, id) {
    if (!cell || cell.v === null || cell.v === undefined) {
      return el("td", {"class": "null", "data-col": id, title: cell && cell.reason ? cell.reason : "not measured"},
                "\u2014");
    }
    var td = el("td", {"class": "num", "data-col": id, "data-v": String(cell.v)});
    var value = el("span", {"class": "v"}, cell.text);
    var p = cell.paired;
    if (p) {
      // fiqa-bench compare's verdict: bold = the best, separated from the runner-up; a dagger = tied with the best
      if (p.best && p.separated) { value.setAttribute("class", "v best"); }
      var tie = (p.best && !p.separated) || p.tied;
      if (tie) { td.setAttribute("data-tie", "1"); }
      var tip = p.best ? (p.separated ? "best, separated from the runner-up (paired bootstrap)"
                                      : "best, but tied with the runner-up (paired bootstrap)")
                       : "difference to the best (" + p.best_label + "): " + p.diff_text +
                         (p.lo_text !== undefined ? " [" + p.lo_text + ", " + p.hi_text + "], " +
                          (p.significant ? "significant" : "not significant: tied") : "");
      td.setAttribute("title", tip);
      td.appendChild(value);
      if (tie) { td.appendChild(el("span", {"class": "tie"}, "\u2020")); }
    } else {
      td.appendChild(value);
    }
    if (cell.lo_text !== undefined) {
      td.appendChild(document.createTextNode(" "));
      td.appendChild(el("span", {"class": "ci", title: "bootstrap interval"}, "[" + cell.lo_text + ", " +
                         cell.hi_text + "]"));
    }
    return td;
  }

  function renderBoard(board) {
    var rows = board.rows.filter(function (r) { return allowed("method", r.method); });
    if (state.group) {  // the runs with this group, each row showing the metrics of the group's comparisons only
      rows = rows.filter(function (r) { return r.groups && r.groups[state.group]; }).map(function (r) {
        return Object.assign({}, r, {cells: r.groups[state.group]});
      });
    }
    if (rows.length === 0) { return null; }
    var columns = board.columns.filter(function (c) { return allowed("metric", c.metric); });
    var spec = sortSpec(board, columns);
    rows = rows.slice().sort(compareRows(spec));

    var section = el("section", {"class": "board", id: board.id, "data-board": board.id});
    section.appendChild(el("h2", {}, board.title));
    section.appendChild(el("p", {"class": "meta"}, boardMeta(board)));
    if (state.group) {
      section.appendChild(el("p", {"class": "meta group-note"}, "Group " + state.group + ": each run's metrics on " +
        "the comparisons whose two templates kept images of this group only (fiqa-bench groups); intervals over " +
        "subjects; paired marks are for all comparisons and are not shown."));
    }
    if (board.paired) {
      section.appendChild(el("p", {"class": "meta"}, "Bold: the best, separated from the runner-up (the paired " +
        "bootstrap interval of their difference excludes zero); \u2020: tied with the best (that interval " +
        "includes zero). Hover a value for its paired difference to the best."));
    } else if (board.paired_note) {
      section.appendChild(el("p", {"class": "meta"}, board.paired_note));
    }
    if (board.not_ranked_with) {
      section.appendChild(el("p", {"class": "warn"}, "Protocol " + board.protocol + " has runs of another " +
        "version, pair list or face list: those are on their own board and not ranked with these."));
    }
    var table = el("table", {"class": "board"});
    var thead = el("thead");
    var hr = el("tr");
    hr.appendChild(el("th", {scope: "col"}, "#"));
    hr.appendChild(headerCell(board, spec, "method", "method"));
    var costHead = headerCell(board, spec, "cost", "ms/image");
    costHead.setAttribute("title", "ms per image, one image per call (the costs.json it links to has the machine " +
                          "and the batched figure); only for a method's default build");
    hr.appendChild(costHead);
    columns.forEach(function (c) {
      var title = c.title + (c.unit ? " (" + c.unit + ")" : "");
      hr.appendChild(headerCell(board, spec, c.id, title, c.higher_is_better ? "\u2191 better" : "\u2193 better"));
    });
    thead.appendChild(hr);
    table.appendChild(thead);

    var tbody = el("tbody");
    var rank = 0, previous;
    rows.forEach(function (row, i) {
      var v = sortValue(row, spec);
      if (spec.id === "method") { rank = i + 1; } else if (i === 0 || v !== previous) { rank = i + 1; }
      previous = v;
      var tr = el("tr", {"data-row": row.id, "data-method": row.method});
      tr.appendChild(el("td", {"class": "rank"}, v === null && spec.id !== "method" ? "\u2014" : rank));
      var method = el("td", {"class": "method"});
      method.appendChild(el("span", {"class": "label"}, row.label));
      var links = el("span", {"class": "links"});
      links.appendChild(el("a", {href: row.file, "class": "results"}, "results"));
      if (row.raw) { links.appendChild(el("a", {href: row.raw, "class": "raw"}, ".npz")); }
      links.appendChild(el("a", {href: row.card, "class": "card"}, "card"));
      method.appendChild(links);
      tr.appendChild(method);
      var cost = el("td", {"class": row.cost && row.cost.ms_single !== null ? "num cost" : "null cost"});
      if (row.cost && row.cost.ms_single !== null) {
        cost.appendChild(el("a", {href: row.cost.file, title: row.cost.machine}, row.cost.text));
      } else {
        cost.textContent = "\u2014";
        cost.setAttribute("title", row.cost && row.cost.skipped ? row.cost.skipped : "no costs.json entry for " +
                          "this method's default build");
      }
      tr.appendChild(cost);
      columns.forEach(function (c) { tr.appendChild(metricCell(row.cells[c.id], c.id)); });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    var scroll = el("div", {"class": "scroll"});
    scroll.appendChild(table);
    section.appendChild(scroll);
    return section;
  }

  function render() {
    var main = document.getElementById("boards");
    main.textContent = "";
    var shown = 0;
    DATA.boards.forEach(function (board) {
      if (!allowed("protocol", board.protocol) || !allowed("backbone", board.backbone) ||
          !allowed("selection", board.selection)) { return; }
      var section = renderBoard(board);
      if (section) { main.appendChild(section); shown += 1; }
    });
    document.getElementById("empty").hidden = shown > 0;
  }

  function update() {
    syncFilters();
    writeURL();
    render();
  }

  buildFilters();
  readURL();
  update();
  window.addEventListener("hashchange", function () { readURL(); update(); });
})();
