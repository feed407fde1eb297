/* audiorep embedding viewer: plain JavaScript, no libraries, no network.
 *
 * The data comes from data.js (window.AUDIOREP_VIEWER_DATA), written by
 * audiorep.viewer.build. Every string from it reaches the page through textContent or
 * a text node, never innerHTML, so file names and metadata are shown as text and run
 * nothing.
 *
 * Drawing: one canvas; the points are grouped by colour so each colour is one path and
 * one fill (20,000 points draw in a few milliseconds). Hit-testing uses a uniform grid
 * over the map, so hover and click look at a handful of points, not all of them.
 */
(function () {
  "use strict";

  var NEIGHBOURS = 10;
  // Tableau 10 and its light variants: 20 categories told apart; the rest share OTHER.
  var PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#79706e", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63",
    "#d4a6c8", "#fabfd2", "#d7b5a6", "#bab0ac"
  ];
  var OTHER = "#c8c8c8";
  var FILTERED_OUT = "#ececec";
  var NO_SELECTION = "#9a9a9a";
  // Viridis anchors: dark (near, low) to yellow (far, high), so near points stand out on white.
  var VIRIDIS = [
    [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]
  ];
  var RAMP_STEPS = 64;
  var MAX_FILTER_CHECKBOXES = 200;
  var MAX_SEARCH_RESULTS = 50;
  var AUDIO_NOTES = [
    "",
    "not copied: the viewer keeps at most {max} clips, sampled evenly by label (rebuild with a larger --max-audio)",
    "no audio: the file was not found when the viewer was built",
    "no audio: the file could not be read when the viewer was built",
    "no audio file is recorded for this clip"
  ];

  var DATA = window.AUDIOREP_VIEWER_DATA;
  var T0 = performance.now();

  // ---------------------------------------------------------------- decoding
  function bytesOf(b64) {
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function halfToFloat(h) {
    var sign = h & 0x8000 ? -1 : 1;
    var exponent = (h >> 10) & 0x1f;
    var fraction = h & 0x3ff;
    if (exponent === 0) return sign * fraction * Math.pow(2, -24);
    if (exponent === 31) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * Math.pow(2, exponent - 15);
  }

  function float16Array(bytes) {
    var half = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
    var table = new Float32Array(65536); // every half-precision bit pattern, decoded once
    for (var h = 0; h < 65536; h++) table[h] = halfToFloat(h);
    var out = new Float32Array(half.length);
    for (var i = 0; i < half.length; i++) out[i] = table[half[i]];
    return out;
  }

  function codesOf(column) {
    var bytes = bytesOf(column.codes);
    return column.codeBytes === 2
      ? new Uint16Array(bytes.buffer, 0, bytes.length >> 1)
      : new Uint32Array(bytes.buffer, 0, bytes.length >> 2);
  }

  // ---------------------------------------------------------------- DOM helpers
  function byId(id) { return document.getElementById(id); }

  /* el("li", {className: "x"}, "text", child): strings become text nodes, never markup. */
  function el(tag, props) {
    var node = document.createElement(tag);
    if (props) for (var key in props) node[key] = props[key];
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function rampColour(t) {
    t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
    var k = Math.min(VIRIDIS.length - 2, Math.floor(t));
    var f = t - k, a = VIRIDIS[k], b = VIRIDIS[k + 1];
    return "rgb(" + Math.round(a[0] + f * (b[0] - a[0])) + "," +
      Math.round(a[1] + f * (b[1] - a[1])) + "," + Math.round(a[2] + f * (b[2] - a[2])) + ")";
  }
  var RAMP = [];
  for (var step = 0; step < RAMP_STEPS; step++) RAMP.push(rampColour(step / (RAMP_STEPS - 1)));

  function formatNumber(x) {
    if (!isFinite(x)) return String(x);
    var a = Math.abs(x);
    return a !== 0 && (a < 0.01 || a >= 1e5) ? x.toExponential(2) : String(+x.toFixed(3));
  }

  // ---------------------------------------------------------------- state
  var n = DATA.count;
  var S = {
    names: DATA.clipIds,
    namesLower: DATA.clipIds.map(function (s) { return s.toLowerCase(); }),
    dim: DATA.dim,
    embeddings: float16Array(bytesOf(DATA.embeddings)),
    audio: DATA.audio,
    audioStatus: bytesOf(DATA.audioStatus),
    columns: DATA.columns.map(function (c) {
      var codes = codesOf(c);
      var counts = new Int32Array(c.values.length);
      for (var i = 0; i < n; i++) counts[codes[i]]++;
      return {
        name: c.name, values: c.values, numeric: c.numeric, codes: codes, counts: counts,
        allowed: new Uint8Array(c.values.length).fill(1), contains: ""
      };
    }),
    projections: DATA.projections.map(function (p) {
      var points = new Float32Array(bytesOf(p.points).buffer);
      return { key: p.key, title: p.title, points: points, grid: null };
    }),
    projection: null,
    labelColumn: -1,
    colourBy: 0, // column index, or -1 for the distance to the selected clip
    colours: [NO_SELECTION], // CSS colour of each colour index
    colourIndex: new Uint16Array(n),
    groupOrder: [0], // colour indices in drawing order (later ones on top)
    groupStart: null,
    groupItems: null,
    visible: new Uint8Array(n).fill(1),
    visibleCount: n,
    query: "",
    selected: -1,
    distances: null,
    neighbours: [],
    view: { scale: 1, fitScale: 1, tx: 0, ty: 0, moved: false },
    width: 0, height: 0, dpr: 1,
    drawQueued: false,
    timings: { dataDecodedMs: 0, firstDrawMs: 0, firstRenderMs: 0, lastDrawMs: 0, lastDistanceMs: 0 }
  };
  S.columns.forEach(function (c, k) { if (c.name === DATA.labelColumn) S.labelColumn = k; });
  S.timings.dataDecodedMs = performance.now() - T0;

  var canvas = byId("map");
  var ctx = canvas.getContext("2d", { alpha: false });
  var tooltip = byId("tooltip");

  // ---------------------------------------------------------------- colours
  function buildGroups() {
    var k = S.colours.length;
    var start = new Int32Array(k + 1);
    for (var i = 0; i < n; i++) start[S.colourIndex[i] + 1]++;
    for (var c = 0; c < k; c++) start[c + 1] += start[c];
    var fill = start.slice(0, k);
    var items = new Int32Array(n);
    for (i = 0; i < n; i++) items[fill[S.colourIndex[i]]++] = i;
    S.groupStart = start;
    S.groupItems = items;
  }

  function range(count) {
    var out = [];
    for (var k = 0; k < count; k++) out.push(k);
    return out;
  }

  /* Sets colours, colourIndex and groupOrder for the current colouring, and the legend. */
  function recolour() {
    var legend = byId("legend");
    clear(legend);
    var i;
    if (S.colourBy < 0) {
      if (S.selected < 0) {
        S.colours = [NO_SELECTION];
        S.colourIndex.fill(0);
        S.groupOrder = [0];
        legend.appendChild(el("p", { className: "note" },
          "click a point: the others are then coloured by their cosine distance to it in the full embedding space"));
      } else {
        var d = S.distances, lo = Infinity, hi = -Infinity;
        for (i = 0; i < n; i++) {
          if (i === S.selected) continue;
          if (d[i] < lo) lo = d[i];
          if (d[i] > hi) hi = d[i];
        }
        if (!(hi > lo)) { lo = 0; hi = Math.max(hi, 1e-6); }
        var scale = (RAMP_STEPS - 1) / (hi - lo);
        for (i = 0; i < n; i++) {
          S.colourIndex[i] = Math.max(0, Math.min(RAMP_STEPS - 1, Math.round((d[i] - lo) * scale)));
        }
        S.colours = RAMP;
        S.groupOrder = range(RAMP_STEPS).reverse(); // far first, near on top
        colourBar(legend, lo, hi, "cosine distance to " + S.names[S.selected] + " (full embedding space)");
      }
    } else {
      var column = S.columns[S.colourBy];
      var codes = column.codes, m = column.values.length;
      if (column.numeric && m > PALETTE.length) {
        var numbers = column.values.map(Number);
        var vlo = numbers[0], vhi = numbers[m - 1]; // values are sorted as numbers
        var span = vhi > vlo ? vhi - vlo : 1;
        var valueColour = numbers.map(function (v) {
          return Math.round((v - vlo) / span * (RAMP_STEPS - 1));
        });
        for (i = 0; i < n; i++) S.colourIndex[i] = valueColour[codes[i]];
        S.colours = RAMP;
        S.groupOrder = range(RAMP_STEPS);
        colourBar(legend, vlo, vhi, column.name);
      } else {
        // The most frequent values get the palette; the rest share OTHER.
        var byCount = range(m).sort(function (a, b) {
          return column.counts[b] - column.counts[a] || a - b;
        });
        var named = m > PALETTE.length ? PALETTE.length - 1 : m;
        var valueColour2 = new Uint16Array(m).fill(named);
        for (var r = 0; r < named; r++) valueColour2[byCount[r]] = r;
        for (i = 0; i < n; i++) S.colourIndex[i] = valueColour2[codes[i]];
        S.colours = PALETTE.slice(0, named).concat([OTHER]);
        // Large groups first, so small ones are not buried under them.
        S.groupOrder = [named].concat(range(named));
        legend.appendChild(el("p", { className: "note" }, column.name));
        for (r = 0; r < named; r++) {
          var value = byCount[r];
          legend.appendChild(legendRow(PALETTE[r], column.values[value], column.counts[value]));
        }
        if (m > named) {
          var rest = 0;
          for (r = named; r < m; r++) rest += column.counts[byCount[r]];
          legend.appendChild(legendRow(OTHER, "other (" + (m - named) + " values)", rest));
        }
      }
    }
    S.packed = Uint32Array.from(S.colours, packColour);
    buildGroups();
  }

  function legendRow(colour, text, count) {
    var swatch = el("span", { className: "swatch" });
    swatch.style.background = colour;
    return el("div", { className: "legend-row" }, swatch, el("span", null, text),
      el("span", { className: "count" }, String(count)));
  }

  function colourBar(legend, lo, hi, caption) {
    var bar = el("canvas", { id: "colour-bar", width: 256, height: 14 });
    var g = bar.getContext("2d");
    for (var k = 0; k < RAMP_STEPS; k++) {
      g.fillStyle = RAMP[k];
      g.fillRect(Math.floor(k * 256 / RAMP_STEPS), 0, Math.ceil(256 / RAMP_STEPS) + 1, 14);
    }
    legend.appendChild(el("p", { className: "note" }, caption));
    legend.appendChild(bar);
    legend.appendChild(el("div", { className: "bar-ticks" },
      el("span", null, formatNumber(lo)), el("span", null, formatNumber((lo + hi) / 2)),
      el("span", null, formatNumber(hi))));
  }

  // ---------------------------------------------------------------- view and drawing
  function pointRadius() {
    var base = Math.max(1.5, Math.min(4.5, 3.2 * Math.sqrt(2000 / Math.max(n, 1))));
    // Grows a little when zoomed in, so dense clusters open up.
    return Math.min(base * Math.sqrt(Math.max(1, S.view.scale / S.view.fitScale)), 8);
  }

  /* [xmin, xmax, ymin, ymax] of a projection's points. */
  function bounds(p) {
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (var i = 0; i < n; i++) {
      var x = p[2 * i], y = p[2 * i + 1];
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    return [x0, x1, y0, y1];
  }

  function fitView() {
    var b = bounds(S.projection.points), x0 = b[0], x1 = b[1], y0 = b[2], y1 = b[3];
    var pad = 16, w = Math.max(1, S.width - 2 * pad), h = Math.max(1, S.height - 2 * pad);
    var dx = x1 - x0 || 1, dy = y1 - y0 || 1;
    var scale = Math.min(w / dx, h / dy);
    S.view.scale = S.view.fitScale = scale;
    S.view.tx = pad + (w - dx * scale) / 2 - x0 * scale;
    S.view.ty = pad + (h - dy * scale) / 2 + y1 * scale;
    S.view.moved = false;
  }

  function resize() {
    var box = canvas.getBoundingClientRect();
    S.dpr = window.devicePixelRatio || 1;
    S.width = Math.max(1, box.width);
    S.height = Math.max(1, box.height);
    canvas.width = Math.round(S.width * S.dpr);
    canvas.height = Math.round(S.height * S.dpr);
    S.image = ctx.createImageData(canvas.width, canvas.height);
    S.pixels = new Uint32Array(S.image.data.buffer);
  }

  /* Packed RGBA (little-endian, as ImageData's bytes read through a Uint32Array). */
  function packColour(css) {
    var m = /^#([0-9a-f]{6})$/i.exec(css), r, g, b;
    if (m) {
      var v = parseInt(m[1], 16);
      r = v >> 16; g = (v >> 8) & 255; b = v & 255;
    } else {
      var parts = css.match(/\d+/g);
      r = +parts[0]; g = +parts[1]; b = +parts[2];
    }
    return (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
  }
  var WHITE = packColour("#ffffff");

  /* Pixel offsets of a disc of radius `radius` (device pixels) and each one's coverage
   * in 1/256ths, so edges are blended instead of jagged. */
  var discCache = {};
  function discMask(radius) {
    var key = radius.toFixed(2);
    if (discCache[key]) return discCache[key];
    var reach = Math.ceil(radius + 0.5), dx = [], dy = [], cover = [];
    for (var y = -reach; y <= reach; y++) {
      for (var x = -reach; x <= reach; x++) {
        var a = Math.min(1, Math.max(0, radius + 0.5 - Math.sqrt(x * x + y * y)));
        if (a <= 0) continue;
        dx.push(x); dy.push(y); cover.push(Math.round(a * 256));
      }
    }
    discCache[key] = { reach: reach, dx: dx, dy: dy, cover: cover };
    return discCache[key];
  }

  function blend(dst, src, a) {
    var rb = (((src & 0xff00ff) * a + (dst & 0xff00ff) * (256 - a)) >>> 8) & 0xff00ff;
    var g = (((src & 0xff00) * a + (dst & 0xff00) * (256 - a)) >>> 8) & 0xff00;
    return (0xff000000 | rb | g) >>> 0;
  }

  /* Points are stamped into a pixel buffer and put on the canvas in one call: on the
   * software rasteriser headless chromium uses, 20,000 path fills cost ~10x more. */
  function stampPoints(indices, from, to, colour, onlyVisible, view) {
    var p = S.projection.points, px = S.pixels, W = canvas.width, H = canvas.height;
    var mask = view.mask, reach = mask.reach, count = mask.dx.length;
    var mdx = mask.dx, mdy = mask.dy, cover = mask.cover, visible = S.visible;
    for (var k = from; k < to; k++) {
      var i = indices ? indices[k] : k;
      if (visible[i] !== onlyVisible) continue;
      var cx = Math.round(p[2 * i] * view.sc + view.tx);
      var cy = Math.round(view.ty - p[2 * i + 1] * view.sc);
      if (cx < -reach || cy < -reach || cx >= W + reach || cy >= H + reach) continue;
      var inside = cx >= reach && cy >= reach && cx < W - reach && cy < H - reach;
      for (var m = 0; m < count; m++) {
        var x = cx + mdx[m], y = cy + mdy[m];
        if (!inside && (x < 0 || y < 0 || x >= W || y >= H)) continue;
        var o = y * W + x;
        px[o] = cover[m] >= 256 ? colour : blend(px[o], colour, cover[m]);
      }
    }
  }

  function draw() {
    var t0 = performance.now();
    var dpr = S.dpr, r = pointRadius();
    var view = {
      sc: S.view.scale * dpr, tx: S.view.tx * dpr, ty: S.view.ty * dpr, mask: discMask(r * dpr)
    };
    S.pixels.fill(WHITE);
    // Filtered-out points stay as a faint backdrop, so the map keeps its shape.
    if (S.visibleCount < n) stampPoints(null, 0, n, packColour(FILTERED_OUT), 0, view);
    var start = S.groupStart, items = S.groupItems;
    for (var g = 0; g < S.groupOrder.length; g++) {
      var c = S.groupOrder[g];
      stampPoints(items, start[c], start[c + 1], S.packed[c], 1, view);
    }
    ctx.putImageData(S.image, 0, 0);
    if (S.selected >= 0) {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 1;
      for (var k = 0; k < S.neighbours.length; k++) ring(S.neighbours[k], r + 2.5);
      // A white halo under the black ring keeps it visible on dark colours.
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 4.5;
      ring(S.selected, r + 4.5);
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2;
      ring(S.selected, r + 4.5);
    }
    S.timings.lastDrawMs = performance.now() - t0;
  }

  function ring(i, radius) {
    var p = S.projection.points;
    ctx.beginPath();
    ctx.arc(p[2 * i] * S.view.scale + S.view.tx, S.view.ty - p[2 * i + 1] * S.view.scale,
      radius, 0, 2 * Math.PI);
    ctx.stroke();
  }

  function requestDraw() {
    if (S.drawQueued) return;
    S.drawQueued = true;
    requestAnimationFrame(function () { S.drawQueued = false; draw(); });
  }

  // ---------------------------------------------------------------- hit-testing
  function buildGrid(projection) {
    var p = projection.points, b = bounds(p), x0 = b[0], x1 = b[1], y0 = b[2], y1 = b[3], i;
    var side = Math.max(1, Math.ceil(Math.sqrt(n / 4))); // about 4 points per cell
    var cw = (x1 - x0) / side || 1, ch = (y1 - y0) / side || 1;
    var cellOf = new Int32Array(n);
    var start = new Int32Array(side * side + 1);
    for (i = 0; i < n; i++) {
      var cx = Math.min(side - 1, Math.floor((p[2 * i] - x0) / cw));
      var cy = Math.min(side - 1, Math.floor((p[2 * i + 1] - y0) / ch));
      cellOf[i] = cy * side + cx;
      start[cellOf[i] + 1]++;
    }
    for (var c = 0; c < side * side; c++) start[c + 1] += start[c];
    var fill = start.slice(0, side * side), items = new Int32Array(n);
    for (i = 0; i < n; i++) items[fill[cellOf[i]]++] = i;
    return { x0: x0, y0: y0, cw: cw, ch: ch, side: side, start: start, items: items };
  }

  /* The visible point nearest to canvas position (sx, sy), within radiusPx; -1 if none. */
  function pick(sx, sy, radiusPx) {
    var proj = S.projection;
    if (!proj.grid) proj.grid = buildGrid(proj);
    var g = proj.grid, p = proj.points, v = S.view;
    var x = (sx - v.tx) / v.scale, y = (v.ty - sy) / v.scale, rad = radiusPx / v.scale;
    var cx0 = Math.max(0, Math.floor((x - rad - g.x0) / g.cw));
    var cx1 = Math.min(g.side - 1, Math.floor((x + rad - g.x0) / g.cw));
    var cy0 = Math.max(0, Math.floor((y - rad - g.y0) / g.ch));
    var cy1 = Math.min(g.side - 1, Math.floor((y + rad - g.y0) / g.ch));
    var best = -1, bestD = rad * rad;
    for (var cy = cy0; cy <= cy1; cy++) {
      for (var cx = cx0; cx <= cx1; cx++) {
        var c = cy * g.side + cx;
        for (var k = g.start[c]; k < g.start[c + 1]; k++) {
          var i = g.items[k];
          if (!S.visible[i]) continue;
          var dx = p[2 * i] - x, dy = p[2 * i + 1] - y, dd = dx * dx + dy * dy;
          if (dd <= bestD) { bestD = dd; best = i; }
        }
      }
    }
    return best;
  }

  // ---------------------------------------------------------------- selection
  /* Cosine distances from clip i to every clip, from the unit-normalised embeddings. */
  function computeDistances(i) {
    var t0 = performance.now();
    var e = S.embeddings, dim = S.dim, out = new Float32Array(n);
    var q = e.subarray(i * dim, (i + 1) * dim);
    for (var j = 0, base = 0; j < n; j++, base += dim) {
      var dot = 0;
      for (var k = 0; k < dim; k++) dot += e[base + k] * q[k];
      out[j] = 1 - dot;
    }
    S.timings.lastDistanceMs = performance.now() - t0;
    return out;
  }

  /* The NEIGHBOURS nearest clips to i (all clips, filters aside), nearest first. */
  function nearest(i, distances) {
    var best = [];
    for (var j = 0; j < n; j++) {
      if (j === i) continue;
      var dj = distances[j];
      if (best.length === NEIGHBOURS && dj >= distances[best[NEIGHBOURS - 1]]) continue;
      var at = best.length < NEIGHBOURS ? best.length : NEIGHBOURS - 1;
      best[at] = j;
      while (at > 0 && distances[best[at - 1]] > dj) { best[at] = best[at - 1]; best[--at] = j; }
    }
    return best;
  }

  function audioNote(i) {
    return AUDIO_NOTES[S.audioStatus[i]].replace("{max}", String(DATA.maxAudio));
  }

  function labelOf(i) {
    if (S.labelColumn < 0) return "";
    var c = S.columns[S.labelColumn];
    return c.values[c.codes[i]];
  }

  function select(i, play) {
    S.selected = i;
    S.distances = computeDistances(i);
    S.neighbours = nearest(i, S.distances);
    byId("selection-hint").hidden = true;
    byId("selection").hidden = false;
    byId("selected-name").textContent = S.names[i];

    var player = byId("selected-audio");
    var note = byId("selected-audio-note");
    if (S.audio[i]) {
      player.hidden = false;
      player.src = S.audio[i];
      note.textContent = "";
      if (play) player.play().catch(function () { /* autoplay refused: controls remain */ });
    } else {
      player.pause();
      player.removeAttribute("src");
      player.load();
      player.hidden = true;
      note.textContent = audioNote(i);
    }

    var table = byId("selected-meta");
    clear(table);
    S.columns.forEach(function (c) {
      table.appendChild(el("tr", null, el("td", null, c.name), el("td", null, c.values[c.codes[i]])));
    });

    var list = byId("neighbours");
    clear(list);
    S.neighbours.forEach(function (j) {
      var playButton = el("button", { type: "button", className: "play", textContent: "\u25b6" });
      if (S.audio[j]) {
        playButton.title = "play " + S.names[j];
        playButton.addEventListener("click", function () { preview(j); });
      } else {
        playButton.disabled = true;
        playButton.title = audioNote(j);
      }
      var link = el("button", { type: "button", className: "link", title: "select this clip" }, S.names[j]);
      link.addEventListener("click", function () { select(j, true); });
      var label = labelOf(j);
      list.appendChild(el("li", null, el("div", { className: "row" }, playButton, link,
        el("span", { className: "distance" }, S.distances[j].toFixed(3) + (label ? " \u00b7 " + label : "")))));
    });
    if (S.colourBy < 0) recolour();
    draw();
  }

  function preview(j) {
    var player = byId("preview-audio");
    player.hidden = false;
    player.src = S.audio[j];
    byId("preview-name").textContent = "neighbour: " + S.names[j];
    player.play().catch(function () { /* autoplay refused: controls remain */ });
  }

  // ---------------------------------------------------------------- filters and search
  function updateVisible() {
    var visible = S.visible, count = 0, q = S.query;
    var columns = S.columns.filter(function (c) {
      return c.contains || c.allowed.indexOf(0) >= 0;
    });
    columns.forEach(function (c) {
      if (!c.contains) return;
      // A "contains" filter becomes the same per-value mask as the checkboxes.
      var needle = c.contains.toLowerCase();
      c.allowedByText = Uint8Array.from(c.values, function (v) {
        return v.toLowerCase().indexOf(needle) >= 0 ? 1 : 0;
      });
    });
    for (var i = 0; i < n; i++) {
      var keep = 1;
      for (var k = 0; k < columns.length && keep; k++) {
        var c = columns[k];
        keep = (c.contains ? c.allowedByText : c.allowed)[c.codes[i]];
      }
      if (keep && q) keep = S.namesLower[i].indexOf(q) >= 0 ? 1 : 0;
      visible[i] = keep;
      count += keep;
    }
    S.visibleCount = count;
    byId("counts").textContent = count === n ? n + " clips" : count + " of " + n + " clips shown";
    renderSearchResults();
    requestDraw();
  }

  function renderSearchResults() {
    var box = byId("search-box"), list = byId("search-results");
    clear(list);
    box.hidden = !S.query;
    if (!S.query) return;
    var shown = 0;
    for (var i = 0; i < n && shown < MAX_SEARCH_RESULTS; i++) {
      if (!S.visible[i]) continue;
      shown++;
      list.appendChild(el("li", null, resultLink(i)));
    }
    if (shown === 0) list.appendChild(el("li", { className: "note" }, "no clip name contains that text"));
    else if (S.visibleCount > shown) {
      list.appendChild(el("li", { className: "note" }, "\u2026 and " + (S.visibleCount - shown) + " more"));
    }
  }

  function resultLink(i) {
    var link = el("button", { type: "button", className: "link" }, S.names[i]);
    link.addEventListener("click", function () { select(i, true); });
    return link;
  }

  function buildFilters() {
    var box = byId("filters");
    S.columns.forEach(function (c) {
      var summaryCount = el("span", { className: "note" });
      function refreshSummary() {
        var allowed = 0;
        for (var k = 0; k < c.allowed.length; k++) allowed += c.allowed[k];
        summaryCount.textContent = c.contains ? " (contains \u201c" + c.contains + "\u201d)"
          : allowed === c.values.length ? " (all " + c.values.length + ")"
          : " (" + allowed + " of " + c.values.length + ")";
      }
      var details = el("details", { className: "filter" }, el("summary", null, c.name, summaryCount));
      if (c.values.length <= MAX_FILTER_CHECKBOXES) {
        var boxes = [];
        var setAll = function (on) {
          c.allowed.fill(on ? 1 : 0);
          boxes.forEach(function (b) { b.checked = on; });
          refreshSummary();
          updateVisible();
        };
        var all = el("button", { type: "button", className: "play" }, "all");
        var none = el("button", { type: "button", className: "play" }, "none");
        all.addEventListener("click", function () { setAll(true); });
        none.addEventListener("click", function () { setAll(false); });
        details.appendChild(el("div", { className: "filter-buttons" }, all, none));
        var values = el("div", { className: "filter-values" });
        c.values.forEach(function (value, k) {
          var input = el("input", { type: "checkbox", checked: true });
          input.dataset.column = c.name;
          input.addEventListener("change", function () {
            c.allowed[k] = input.checked ? 1 : 0;
            refreshSummary();
            updateVisible();
          });
          boxes.push(input);
          values.appendChild(el("label", null, input, el("span", null, value),
            el("span", { className: "note" }, "(" + c.counts[k] + ")")));
        });
        details.appendChild(values);
      } else {
        // Too many values for checkboxes (e.g. one per speaker): match them as text.
        var text = el("input", { type: "search", placeholder: c.values.length + " values: contains\u2026" });
        text.addEventListener("input", function () {
          c.contains = text.value.trim();
          refreshSummary();
          updateVisible();
        });
        details.appendChild(el("div", { className: "filter-values" }, text));
      }
      refreshSummary();
      box.appendChild(details);
    });
  }

  // ---------------------------------------------------------------- controls
  function setColourBy(key) {
    var index = -1;
    if (key !== "distance") {
      S.columns.forEach(function (c, k) { if (c.name === key) index = k; });
      if (index < 0) throw new Error("no metadata column named " + key);
    }
    S.colourBy = index;
    byId("colour-by").value = index < 0 ? "distance" : "column:" + index;
    recolour();
    draw();
  }

  function setProjection(key) {
    var found = S.projections.filter(function (p) { return p.key === key; })[0];
    if (!found) throw new Error("no projection named " + key);
    S.projection = found;
    byId("projection").value = key;
    fitView();
    draw();
  }

  function buildControls() {
    var projection = byId("projection");
    S.projections.forEach(function (p) {
      projection.appendChild(el("option", { value: p.key }, p.title));
    });
    projection.addEventListener("change", function () { setProjection(projection.value); });

    var colourBy = byId("colour-by");
    S.columns.forEach(function (c, k) {
      colourBy.appendChild(el("option", { value: "column:" + k }, c.name));
    });
    colourBy.appendChild(el("option", { value: "distance" }, "distance to selected clip"));
    colourBy.addEventListener("change", function () {
      var value = colourBy.value;
      setColourBy(value === "distance" ? "distance" : S.columns[+value.slice(7)].name);
    });

    var search = byId("search");
    search.addEventListener("input", function () {
      S.query = search.value.trim().toLowerCase();
      updateVisible();
    });
    byId("reset-view").addEventListener("click", function () { fitView(); requestDraw(); });
  }

  function canvasPoint(event) {
    var box = canvas.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  function hoverRadius() { return pointRadius() + 4; }

  function showTooltip(i, at) {
    if (i < 0) { tooltip.hidden = true; return; }
    var text = S.names[i];
    var label = labelOf(i);
    if (label) text += "\n" + S.columns[S.labelColumn].name + ": " + label;
    if (S.colourBy >= 0 && S.colourBy !== S.labelColumn) {
      var c = S.columns[S.colourBy];
      text += "\n" + c.name + ": " + c.values[c.codes[i]];
    }
    if (S.selected >= 0 && i !== S.selected) text += "\ndistance to selected: " + S.distances[i].toFixed(3);
    tooltip.textContent = text;
    tooltip.hidden = false;
    var left = Math.min(at.x + 14, S.width - tooltip.offsetWidth - 4);
    var top = at.y + 14 + tooltip.offsetHeight > S.height ? at.y - tooltip.offsetHeight - 8 : at.y + 14;
    tooltip.style.left = Math.max(0, left) + "px";
    tooltip.style.top = Math.max(0, top) + "px";
  }

  function bindCanvas() {
    var drag = null;
    canvas.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      var at = canvasPoint(event);
      drag = { x: at.x, y: at.y, tx: S.view.tx, ty: S.view.ty, moved: false };
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", function (event) {
      var at = canvasPoint(event);
      if (drag) {
        var dx = at.x - drag.x, dy = at.y - drag.y;
        if (!drag.moved && dx * dx + dy * dy < 9) return; // a click may wobble a pixel or two
        drag.moved = true;
        canvas.classList.add("dragging");
        tooltip.hidden = true;
        S.view.tx = drag.tx + dx;
        S.view.ty = drag.ty + dy;
        S.view.moved = true;
        requestDraw();
        return;
      }
      showTooltip(pick(at.x, at.y, hoverRadius()), at);
    });
    canvas.addEventListener("pointerup", function (event) {
      if (!drag) return;
      var wasDrag = drag.moved;
      drag = null;
      canvas.classList.remove("dragging");
      if (wasDrag) return;
      var at = canvasPoint(event);
      var i = pick(at.x, at.y, hoverRadius());
      if (i >= 0) select(i, true);
    });
    canvas.addEventListener("pointerleave", function () { tooltip.hidden = true; });
    canvas.addEventListener("wheel", function (event) {
      event.preventDefault();
      var at = canvasPoint(event);
      var unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? S.height : 1;
      var factor = Math.exp(-event.deltaY * unit * 0.0015);
      var v = S.view;
      factor = Math.min(Math.max(factor, v.fitScale / 4 / v.scale), v.fitScale * 2000 / v.scale);
      v.scale *= factor;
      v.tx = at.x - (at.x - v.tx) * factor;
      v.ty = at.y + (v.ty - at.y) * factor;
      v.moved = true;
      requestDraw();
    }, { passive: false });
    window.addEventListener("resize", function () {
      resize();
      if (!S.view.moved) fitView();
      requestDraw();
    });
    byId("selected-audio").addEventListener("error", function () {
      if (byId("selected-audio").getAttribute("src")) {
        byId("selected-audio-note").textContent = "the browser cannot play this file";
      }
    });
  }

  // ---------------------------------------------------------------- start
  function flush() {
    // Reading one pixel makes the canvas finish its pending drawing before the clock stops.
    ctx.getImageData(0, 0, 1, 1);
  }

  if (DATA.title) {
    document.title = DATA.title + " \u2014 audiorep embedding viewer";
    byId("title").textContent = DATA.title;
  }
  buildControls();
  buildFilters();
  byId("counts").textContent = n + " clips";
  resize();
  S.projection = S.projections[0];
  byId("projection").value = S.projection.key;
  S.colourBy = S.labelColumn >= 0 ? S.labelColumn : S.columns.length ? 0 : -1;
  byId("colour-by").value = S.colourBy < 0 ? "distance" : "column:" + S.colourBy;
  fitView();
  recolour();
  draw();
  S.timings.firstDrawMs = performance.now();
  bindCanvas();

  /* Hooks for tests and the benchmark; the page itself does not use them. */
  window.viewer = {
    pointCount: n,
    timings: S.timings,
    get visibleCount() { return S.visibleCount; },
    get selected() { return S.selected; },
    get neighbours() { return S.neighbours.slice(); },
    get projection() { return S.projection.key; },
    get colourBy() { return S.colourBy < 0 ? "distance" : S.columns[S.colourBy].name; },
    /* Canvas position of clip i in CSS pixels from the canvas's top-left corner. */
    screenPosition: function (i) {
      var p = S.projection.points;
      return { x: p[2 * i] * S.view.scale + S.view.tx, y: S.view.ty - p[2 * i + 1] * S.view.scale };
    },
    colourOf: function (i) { return S.colours[S.colourIndex[i]]; },
    select: function (i) { select(i, false); },
    setColourBy: setColourBy,
    setProjection: setProjection,
    /* Milliseconds to recolour by `key` and finish drawing (a pixel read forces the raster). */
    measureRedraw: function (key) {
      var t0 = performance.now();
      setColourBy(key);
      flush();
      return performance.now() - t0;
    },
    /* The same, until the browser has produced the next frame. */
    measureRedrawFrame: function (key) {
      var t0 = performance.now();
      setColourBy(key);
      return new Promise(function (resolve) {
        requestAnimationFrame(function () {
          requestAnimationFrame(function () { resolve(performance.now() - t0); });
        });
      });
    },
    /* Milliseconds to pan by (dx, dy) CSS pixels and redraw. */
    measurePan: function (dx, dy) {
      var t0 = performance.now();
      S.view.tx += dx;
      S.view.ty += dy;
      draw();
      flush();
      return performance.now() - t0;
    }
  };
  document.body.dataset.pointCount = String(n);

  // First render: time since navigation until the frame after the first draw is out.
  requestAnimationFrame(function () {
    requestAnimationFrame(function () {
      S.timings.firstRenderMs = performance.now();
      document.body.dataset.ready = "true";
    });
  });
})();
