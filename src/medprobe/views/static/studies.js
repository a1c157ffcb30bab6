/* medprobe report: the study view of report runs (images, reference, each model's report with its differences
   from the reference marked, per-study metrics), sortable and filterable by metric. Plain JavaScript.
   Data arrives as data/KEY-studies.js, queued on window.medprobeStudies. Text is inserted with textContent. */
(function () {
  "use strict";
  var PAGE = 20;
  var MARK = { "=": "span", "-": "del", "+": "ins" };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmt(x) { return x === null || x === undefined ? "n/a" : (+x).toFixed(3); }

  function option(select, value, label) {
    var o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
  }

  function setup(data) {
    var root = document.querySelector('.studies[data-key="' + data.key + '"]');
    if (!root) return;
    var s = { data: data, root: root, page: 0, hits: [] };
    var form = root.querySelector(".controls");
    ["sort", "metric"].forEach(function (name) {
      var select = form.querySelector('[name="' + name + '"]');
      data.runs.forEach(function (run, j) {
        data.metrics.forEach(function (m) { option(select, j + ":" + m, (data.runs.length > 1 ? run + ": " : "") + m); });
      });
    });
    var src = root.querySelector(".sources");
    data.runs.forEach(function (run, j) { src.appendChild(el("li", null, run + ": " + data.sources[j])); });
    data.studies.forEach(function (st) {
      st.search = [st.id, st.ref].concat(st.runs.map(function (c) {
        return c && c.diff ? c.diff.filter(function (d) { return d[0] !== "-"; }).map(function (d) { return d[1]; }).join(" ") : "";
      })).join(" ").toLowerCase();
    });
    form.addEventListener("input", function () { s.page = 0; filter(s); });
    form.addEventListener("change", function () { s.page = 0; filter(s); });
    root.querySelector(".prev").addEventListener("click", function () { if (s.page > 0) { s.page--; show(s); } });
    root.querySelector(".next").addEventListener("click", function () {
      if ((s.page + 1) * PAGE < s.hits.length) { s.page++; show(s); }
    });
    filter(s);
  }

  function value(st, key) {
    if (!key) return null;
    var at = key.indexOf(":");
    var cell = st.runs[+key.slice(0, at)];
    var v = cell && cell.m ? cell.m[key.slice(at + 1)] : undefined;
    return v === undefined || v === null ? null : +v;
  }

  function filter(s) {
    var f = s.root.querySelector(".controls");
    function val(name) { return f.querySelector('[name="' + name + '"]').value; }
    var terms = val("q").toLowerCase().split(/\s+/).filter(Boolean);
    var metric = val("metric"), lo = val("min"), hi = val("max"), sort = val("sort"), desc = val("order") === "desc";
    s.hits = s.data.studies.filter(function (st) {
      if (!terms.every(function (t) { return st.search.indexOf(t) >= 0; })) return false;
      if (metric && (lo !== "" || hi !== "")) {
        var v = value(st, metric);
        if (v === null || (lo !== "" && v < +lo) || (hi !== "" && v > +hi)) return false;
      }
      return true;
    });
    if (sort) {
      s.hits.sort(function (a, b) {
        var x = value(a, sort), y = value(b, sort);
        if (x === null || y === null) return (x === null) - (y === null);  // studies without the metric last
        return desc ? y - x : x - y;
      });
    } else if (desc) {
      s.hits.reverse();
    }
    show(s);
  }

  function diff(cell) {
    var p = el("p", "report-text");
    if (cell.err) { p.className += " error"; p.textContent = "error: " + cell.err; return p; }
    if (cell.invalid) {
      p.className += " invalid";
      p.appendChild(el("strong", null, "invalid report (empty or refused): "));
      p.appendChild(el("span", null, cell.text || ""));
      return p;
    }
    cell.diff.forEach(function (d, i) {
      if (i) p.appendChild(document.createTextNode(" "));
      p.appendChild(el(MARK[d[0]], d[0] === "-" ? "miss" : d[0] === "+" ? "add" : null, d[1]));
    });
    return p;
  }

  function card(s, st) {
    var a = el("article", "study");
    a.dataset.id = st.id;
    var head = el("header", null);
    head.appendChild(el("strong", "study-id", st.id));
    if (st.views) head.appendChild(el("span", "muted small", " views: " + st.views));
    a.appendChild(head);
    var imgs = el("div", "study-images");
    st.img.forEach(function (im) {
      if (im[0]) {
        var img = el("img");
        img.src = im[0];
        img.alt = im[2] || "";
        img.loading = "lazy";
        imgs.appendChild(img);
      } else {
        imgs.appendChild(el("span", "muted small", (im[2] || "image") + ": " + (im[1] || "not shown")));
      }
    });
    a.appendChild(imgs);
    var ref = el("div", "study-ref");
    ref.appendChild(el("h5", null, "reference"));
    ref.appendChild(el("p", "report-text", st.ref));
    a.appendChild(ref);
    st.runs.forEach(function (cell, j) {
      var box = el("div", "study-report");
      box.dataset.run = j;
      box.appendChild(el("h5", null, s.data.runs[j]));
      if (!cell) { box.appendChild(el("p", "muted", "not in this run")); a.appendChild(box); return; }
      box.appendChild(diff(cell));
      var keys = Object.keys(cell.m || {});
      if (keys.length) {
        var table = el("table", "study-metrics");
        keys.forEach(function (k) {
          var tr = el("tr");
          tr.appendChild(el("th", null, k));
          var td = el("td", "num", fmt(cell.m[k]));
          td.dataset.metric = k;
          td.dataset.value = cell.m[k];
          tr.appendChild(td);
          table.appendChild(tr);
        });
        box.appendChild(table);
      }
      a.appendChild(box);
    });
    return a;
  }

  function show(s) {
    var rows = s.root.querySelector(".study-rows");
    rows.textContent = "";
    var start = s.page * PAGE, end = Math.min(s.hits.length, start + PAGE);
    for (var i = start; i < end; i++) rows.appendChild(card(s, s.hits[i]));
    s.root.querySelector(".count").textContent = s.hits.length + " of " + s.data.studies.length + " studies" +
      (s.hits.length ? " (showing " + (start + 1) + "-" + end + ")" : "");
    s.root.querySelector(".page").textContent = "page " + (s.page + 1) + " of " + Math.max(1, Math.ceil(s.hits.length / PAGE));
  }

  var queued = window.medprobeStudies || [];
  window.medprobeStudies = { push: setup };  // data files loaded after this script call setup at once
  queued.forEach(setup);
})();
