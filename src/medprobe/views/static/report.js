/* medprobe report: the sample browser (search, filters, paging). Plain JavaScript, no library.
   Sample data arrives as script files next to the page (data/KEY-index.js, data/KEY-NNNN.js): a page
   opened from disk may load scripts but not read files. Model text is inserted with textContent only. */
(function () {
  "use strict";
  var PAGE = 50;
  var OUTCOME = { c: "correct", w: "wrong", i: "invalid", s: "scored", e: "error", "-": "n/a", x: "not in run" };
  var sections = {};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pad(n) { return ("000" + n).slice(-4); }
  function letter(i) { return String.fromCharCode(65 + i); }

  function index(meta) {
    var root = document.querySelector('.browser[data-key="' + meta.key + '"]');
    var s = { meta: meta, root: root, chunks: {}, waiting: {}, page: 0, hits: [], token: 0 };
    sections[meta.key] = s;
    var form = root.querySelector(".controls");
    var group = form.querySelector('[name="group"]');
    meta.groups.forEach(function (g, i) { var o = el("option", null, g.replace("=", ": ")); o.value = i; group.appendChild(o); });
    var probe = form.querySelector('[name="probe"]');
    meta.probes.forEach(function (p, i) { var o = el("option", null, p); o.value = i; probe.appendChild(o); });
    if (!meta.probes.length) probe.parentNode.hidden = true;
    form.addEventListener("input", function () { s.page = 0; filter(s); });
    form.addEventListener("change", function () { s.page = 0; filter(s); });
    root.querySelector(".prev").addEventListener("click", function () { if (s.page > 0) { s.page--; show(s, true); } });
    root.querySelector(".next").addEventListener("click", function () {
      if ((s.page + 1) * PAGE < s.hits.length) { s.page++; show(s, true); }
    });
    filter(s);
  }

  function chunk(key, n, samples) {
    var s = sections[key];
    s.chunks[n] = samples;
    var callbacks = s.waiting[n] || [];
    delete s.waiting[n];
    callbacks.forEach(function (f) { f(); });
  }

  function load(s, n, done) {
    if (s.chunks[n]) { done(); return; }
    if (s.waiting[n]) { s.waiting[n].push(done); return; }
    s.waiting[n] = [done];
    var tag = document.createElement("script");
    tag.src = "data/" + s.meta.key + "-" + pad(n) + ".js";
    tag.onerror = function () { s.root.querySelector(".count").textContent = "could not read " + tag.src; };
    document.body.appendChild(tag);
  }

  function controls(s) {
    var f = s.root.querySelector(".controls");
    function val(name) { return f.querySelector('[name="' + name + '"]').value; }
    return {
      terms: val("q").toLowerCase().split(/\s+/).filter(Boolean), preset: +val("preset"), run: +val("run"),
      outcome: val("outcome"), group: +val("group"), probe: +val("probe")
    };
  }

  function keep(row, f, nruns) {
    for (var t = 0; t < f.terms.length; t++) if (row[1].indexOf(f.terms[t]) < 0) return false;
    if (f.group >= 0 && row[2].indexOf(f.group) < 0) return false;
    var runs = [];
    for (var r = 0; r < nruns; r++) if (f.run < 0 || f.run === r) runs.push(r);
    if (f.outcome === "disagree") {
      var seen = {};
      for (r = 0; r < nruns; r++) { var c = row[3][r].charAt(f.preset); if ("cwi".indexOf(c) >= 0) seen[c] = 1; }
      if (Object.keys(seen).length < 2) return false;
    } else if (f.outcome) {
      if (!runs.some(function (r) { return row[3][r].charAt(f.preset) === f.outcome; })) return false;
    }
    if (f.probe >= 0 && !runs.some(function (r) { return row[4][r] & (1 << f.probe); })) return false;
    return true;
  }

  function filter(s) {
    var f = controls(s), rows = s.meta.rows, n = s.meta.runs.length;
    s.filters = f;
    s.hits = [];
    for (var i = 0; i < rows.length; i++) if (keep(rows[i], f, n)) s.hits.push(i);
    show(s, false);
  }

  function show(s, scroll) {
    var start = s.page * PAGE, page = s.hits.slice(start, start + PAGE), token = ++s.token;
    var need = {};
    page.forEach(function (i) { need[Math.floor(i / s.meta.chunk)] = 1; });
    var chunks = Object.keys(need), left = chunks.length;
    var pages = Math.max(1, Math.ceil(s.hits.length / PAGE));
    s.root.querySelector(".count").textContent = s.hits.length
      ? "showing " + (start + 1) + "–" + (start + page.length) + " of " + s.hits.length + " samples" +
        (s.hits.length < s.meta.n ? " (" + s.meta.n + " in all)" : "")
      : "no sample matches (" + s.meta.n + " in all)";
    s.root.querySelector(".page").textContent = "page " + (s.page + 1) + " of " + pages;
    s.root.querySelector(".prev").disabled = s.page === 0;
    s.root.querySelector(".next").disabled = s.page + 1 >= pages;
    function render() {
      if (token !== s.token) return;  // a newer filter was applied meanwhile
      var box = s.root.querySelector(".rows");
      box.textContent = "";
      page.forEach(function (i) {
        box.appendChild(card(s, s.chunks[Math.floor(i / s.meta.chunk)][i % s.meta.chunk], s.meta.rows[i]));
      });
      if (scroll) s.root.scrollIntoView();
    }
    if (!left) { render(); return; }
    chunks.forEach(function (c) { load(s, +c, function () { if (--left === 0) render(); }); });
  }

  function images(list, cls) {
    var box = el("div", "media " + (cls || ""));
    if (!list.length) { box.appendChild(el("div", "noimg", "no image")); return box; }
    list.forEach(function (im) {
      if (im[0]) {
        var img = el("img", "thumb");
        img.src = im[0];
        img.alt = im[2];
        img.title = im[2];
        img.loading = "lazy";
        img.addEventListener("click", function () { img.classList.toggle("zoom"); });
        box.appendChild(img);
      } else {
        box.appendChild(el("div", "noimg", im[1] || "image not available"));
      }
    });
    return box;
  }

  function badge(code, label) {
    var b = el("span", "badge o-" + (code === "-" ? "na" : code), label || OUTCOME[code] || code);
    b.title = OUTCOME[code] || code;
    return b;
  }

  function answer(s, a, code, j) {
    var box = el("div", "answer");
    box.appendChild(el("div", "model", s.meta.runs[j]));
    if (!a) { box.appendChild(badge("x")); return box; }
    var preset = s.meta.presets[s.filters.preset];
    var head = el("div", "verdict-line");
    head.appendChild(badge(code.charAt(s.filters.preset)));
    var parsed = a.s[preset];
    if (parsed) {
      var p = el("span", "parsed");
      if (parsed[1] !== null && parsed[1] !== undefined) {
        p.appendChild(document.createTextNode("parsed "));
        p.appendChild(el("code", null, parsed[1]));
      } else {
        p.appendChild(document.createTextNode("no answer read" + (parsed[4] ? ": " + parsed[4] : "")));
      }
      var rule = parsed[2] ? "rule " + parsed[2] + ", " : "";
      p.appendChild(el("span", "muted", " (" + rule + "parser " + parsed[3] + ", preset " + preset + ")"));
      head.appendChild(p);
    } else if (code.charAt(s.filters.preset) === "-") {
      head.appendChild(el("span", "muted", "preset " + preset + " has no rule for this answer type"));
    }
    box.appendChild(head);
    if (a.turns) a.turns.forEach(function (t, k) {
      var d = el("details", "turn");
      d.appendChild(el("summary", null, "turn " + (k + 1)));
      d.appendChild(el("pre", "raw", t));
      box.appendChild(d);
    });
    if (a.chain) {
      var chain = el("details", "chain");
      chain.appendChild(el("summary", null, "reasoning chain (" + a.chain.length + " characters)"));
      chain.appendChild(el("pre", "raw", a.chain));
      box.appendChild(chain);
    }
    if (a.text !== null && a.text !== undefined) box.appendChild(el("pre", "raw", a.answer !== null && a.answer !== undefined ? a.answer : a.text));
    var notes = [];
    if (a.finish === "length") notes.push("cut at the token limit (finish_reason length)");
    if (a.trunc) notes.push("stored text cut from " + a.trunc + " characters");
    if (notes.length) box.appendChild(el("div", "muted small", notes.join("; ")));
    if (a.err) box.appendChild(el("div", "error", (a.kind ? a.kind + ": " : "") + a.err));
    var all = el("div", "presets");
    s.meta.presets.forEach(function (name, k) {
      var c = code.charAt(k);
      if (c !== "-") all.appendChild(badge(c, name));
    });
    box.appendChild(all);
    return box;
  }

  function variants(s, d) {
    var box = el("div", "variants");
    var byProbe = {};
    d.vars.forEach(function (v) { (byProbe[v.probe] = byProbe[v.probe] || []).push(v); });
    Object.keys(byProbe).forEach(function (probe) {
      var group = el("div", "probe-group");
      var presets = s.meta.probe_preset.filter(function (p, i, a) { return a.indexOf(p) === i; }).join(", ");
      group.appendChild(el("h5", null, "probe " + probe + " · outcomes under preset " + presets));
      var grid = el("div", "vgrid");
      byProbe[probe].forEach(function (v) {
        var item = el("div", "variant");
        item.dataset.probe = v.probe;
        item.appendChild(el("div", "vname", v.variant));
        if (v.img === "same") item.appendChild(el("div", "sameimg", "same image"));
        else item.appendChild(images(v.img.map(function (im) { return [im[0], im[1], im[2] || v.probe + " " + v.variant]; }), "small"));
        if (v.detail) Object.keys(v.detail).forEach(function (k) {
          item.appendChild(el("div", "small muted", k.replace(/_/g, " ") + ": " + v.detail[k]));
        });
        if (v.q) item.appendChild(el("div", "vq", v.q));
        if (v.opts) item.appendChild(el("div", "vq muted", v.opts.map(function (o, k) { return letter(k) + ". " + o; }).join("  ")));
        if (v.gold) item.appendChild(el("div", "small", "gold: " + v.gold));
        if (v.shots) item.appendChild(el("div", "small muted", v.shots + " in-context example(s)"));
        v.runs.forEach(function (r, j) {
          var line = el("div", "vrun");
          if (s.meta.runs.length > 1) line.appendChild(el("span", "vmodel", s.meta.runs[j]));
          if (!r) { line.appendChild(badge("x")); item.appendChild(line); return; }
          line.appendChild(badge(r[0]));
          var parentCode = d.runs[j] ? d.runs[j].s[s.meta.probe_preset[j]] : null;
          if (parentCode && "cwi".indexOf(r[0]) >= 0 && parentCode[0] !== r[0]) {
            line.appendChild(el("span", "changed", "changed"));
            item.classList.add("is-changed");
          }
          // the parsed answer; for an unreadable one the reply itself (the reason in the tooltip)
          var parsed = r[1] !== null && r[1] !== undefined;
          var txt = parsed ? r[1] : r[4] || (r[3] ? (r[3].length > 60 ? r[3].slice(0, 60) + "…" : r[3]) : r[2]);
          var c = el("code", "vans", txt);
          c.title = (parsed ? "" : (r[2] || "invalid") + ": ") + (r[3] || "");
          line.appendChild(c);
          item.appendChild(line);
        });
        grid.appendChild(item);
      });
      group.appendChild(grid);
      box.appendChild(group);
    });
    return box;
  }

  function card(s, d, row) {
    var art = el("article", "sample");
    art.dataset.id = d.id;
    var head = el("header");
    head.appendChild(el("span", "sid", d.id));
    head.appendChild(el("span", "chip", d.type.replace("_", " ")));
    row[2].slice(1).forEach(function (g) { head.appendChild(el("span", "chip", s.meta.groups[g].replace("=", ": "))); });
    if (d.vars.length) head.appendChild(el("span", "chip probe-chip", d.vars.length + " probe variant" + (d.vars.length > 1 ? "s" : "")));
    art.appendChild(head);
    var body = el("div", "sample-body");
    body.appendChild(images(d.img));
    var qa = el("div", "qa");
    qa.appendChild(el("p", "q", d.q));
    if (d.opts.length) {
      var ol = el("ol", "opts");
      d.opts.forEach(function (o, k) {
        var li = el("li", letter(k) === d.gold.trim().toUpperCase() ? "gold-opt" : null, letter(k) + ". " + o);
        ol.appendChild(li);
      });
      qa.appendChild(ol);
    }
    var gold = el("p", "gold");
    gold.appendChild(el("span", "muted", "gold: "));
    gold.appendChild(el("strong", null, d.gold));
    qa.appendChild(gold);
    if (d.shots) qa.appendChild(el("p", "small muted", d.shots + " in-context example(s) sent before the question"));
    body.appendChild(qa);
    art.appendChild(body);
    var answers = el("div", "answers");
    answers.style.gridTemplateColumns = "repeat(" + Math.min(d.runs.length, 3) + ", minmax(0, 1fr))";
    d.runs.forEach(function (a, j) { answers.appendChild(answer(s, a, row[3][j], j)); });
    art.appendChild(answers);
    if (d.vars.length) art.appendChild(variants(s, d));
    return art;
  }

  window.medprobe = { index: index, chunk: chunk };
})();
