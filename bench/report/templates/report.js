/* Interactive tables of the self-contained HTML report: sortable columns and per-table filters.
 *
 * Plain JavaScript with no library and nothing fetched, so the one report.html file works offline, from a file://
 * URL, years later. The DOM it reads is the report template's contract:
 *   table.sortable           click (or Enter / Space on) a th: sort the tbody rows by that column, again: reverse;
 *                            the th gets aria-sort="ascending" | "descending", the table's other th lose it.
 *                            Key: the cell's data-sort if present, else its text; numeric when every key of the column is
 *                            a number (leading symbols and thousands commas ignored), else text order; empty, "-" and "n/a" keys sort last in both directions.
 *   div.filters[data-for=ID] select[data-filter=KEY] (left empty by the template) gets an "all" option (value "") and
 *                            each distinct data-KEY of table ID's rows; rows failing any chosen value get `hidden`
 *                            (all selects combine with AND), and span.count reads "N of M rows".
 * A page with no such tables is left as it is.
 */
(function () {
  "use strict";

  var MISSING = { "": true, "-": true, "n/a": true, "\u2013": true, "\u2014": true };

  function cellKey(cell) {
    if (!cell) return "";
    var key = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    return (key || "").replace(/\s+/g, " ").trim();
  }

  // A number when the key reads as one after any leading symbols ("~1.2x", "<0.01", "1,234 / 5,678" -> 1234);
  // NaN when it starts with a letter, so that labels such as "fp32 baseline" or "unstr 50%" sort as text.
  function numberOf(key) {
    var stripped = key.replace(/(\d),(?=\d{3}(?!\d))/g, "$1").replace(/^[^0-9A-Za-z+\-.]+/, "");
    if (!/^[+\-]?(\d|\.\d)/.test(stripped)) return NaN;
    return parseFloat(stripped);
  }

  // The cell of ROW under the header column that starts at COLUMN, counting colspans.
  function cellAt(row, column) {
    var start = 0;
    for (var i = 0; i < row.cells.length; i++) {
      if (start === column) return row.cells[i];
      start += row.cells[i].colSpan || 1;
      if (start > column) return null;
    }
    return null;
  }

  function columnOf(th) {
    var column = 0;
    for (var cell = th.previousElementSibling; cell; cell = cell.previousElementSibling) column += cell.colSpan || 1;
    return column;
  }

  function compareText(a, b) {
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }

  // Every other visible row is striped: :nth-child would count the rows a filter hid.
  function restripe(table) {
    for (var b = 0; b < table.tBodies.length; b++) {
      var visible = 0;
      var rows = table.tBodies[b].rows;
      for (var r = 0; r < rows.length; r++) {
        if (!rows[r].hidden) visible++;
        rows[r].classList.toggle("stripe", !rows[r].hidden && visible % 2 === 0);
      }
    }
  }

  function sortBy(table, th) {
    var descending = th.getAttribute("aria-sort") === "ascending";
    var headers = table.querySelectorAll("thead th");
    for (var h = 0; h < headers.length; h++) headers[h].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var column = columnOf(th);
    for (var b = 0; b < table.tBodies.length; b++) {
      var body = table.tBodies[b];
      var entries = Array.prototype.map.call(body.rows, function (row, index) {
        var key = cellKey(cellAt(row, column));
        return { row: row, key: key, number: numberOf(key), missing: MISSING[key.toLowerCase()] === true, index: index };
      });
      // Numbers when every present key of the column is one: a comparison that switched between numeric and text
      // order from pair to pair would not be an order at all.
      var numeric = entries.every(function (entry) { return entry.missing || !isNaN(entry.number); });
      entries.sort(function (p, q) {
        if (p.missing || q.missing) return p.missing === q.missing ? p.index - q.index : p.missing ? 1 : -1;
        var order = numeric ? p.number - q.number : compareText(p.key, q.key);
        return (descending ? -order : order) || p.index - q.index;
      });
      entries.forEach(function (entry) { body.appendChild(entry.row); });
    }
    restripe(table);
  }

  function makeSortable(table) {
    var headers = table.querySelectorAll("thead th");
    Array.prototype.forEach.call(headers, function (th) {
      th.tabIndex = 0;
      if (!th.title) th.title = "sort by this column (again to reverse)";
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortBy(table, th);
        }
      });
    });
  }

  function bodyRows(table) {
    var rows = [];
    for (var b = 0; b < table.tBodies.length; b++) rows.push.apply(rows, table.tBodies[b].rows);
    return rows;
  }

  function makeFilters(bar) {
    var table = document.getElementById(bar.getAttribute("data-for"));
    if (!table) return;
    var selects = Array.prototype.slice.call(bar.querySelectorAll("select[data-filter]"));
    var count = bar.querySelector(".count");
    selects.forEach(function (select) {
      var key = select.getAttribute("data-filter");
      if (!select.getAttribute("aria-label") && !(select.labels && select.labels.length)) {
        select.setAttribute("aria-label", "show " + key);
      }
      if (select.options.length) return;
      var seen = {};
      bodyRows(table).forEach(function (row) {
        var value = row.getAttribute("data-" + key);
        if (value !== null) seen[value] = true;
      });
      select.add(new Option("all", ""));
      Object.keys(seen).sort(compareText).forEach(function (value) { select.add(new Option(value, value)); });
    });

    function apply() {
      var rows = bodyRows(table), shown = 0;
      rows.forEach(function (row) {
        var keep = selects.every(function (select) {
          return select.value === "" || row.getAttribute("data-" + select.getAttribute("data-filter")) === select.value;
        });
        row.hidden = !keep;
        if (keep) shown++;
      });
      if (count) count.textContent = shown + " of " + rows.length + " rows";
      restripe(table);
    }
    selects.forEach(function (select) { select.addEventListener("change", apply); });
    apply();
  }

  // A table outside a .table-wrap would widen the whole page on a phone; scroll it in a wrapper of its own instead.
  function wrap(table) {
    var parent = table.parentElement;
    if (!parent || parent.classList.contains("table-wrap")) return;
    var wrapper = document.createElement("div");
    wrapper.className = "table-wrap";
    parent.insertBefore(wrapper, table);
    wrapper.appendChild(table);
  }

  function init() {
    var tables = document.querySelectorAll("table");
    Array.prototype.forEach.call(tables, wrap);
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
    Array.prototype.forEach.call(document.querySelectorAll("div.filters[data-for]"), makeFilters);
    Array.prototype.forEach.call(tables, restripe);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
