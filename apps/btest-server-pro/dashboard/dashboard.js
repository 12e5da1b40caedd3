// The dashboard of btest-server-pro: polls the JSON API once a second and draws running tests
// (with a chart of their per-second rates), the quota and the history. User names and
// addresses are chosen by whoever connects, so every value reaches the page through
// textContent, never as markup. No other origin is contacted (Chart.js is served locally).
'use strict';

(function () {
  const tokenKey = 'btest-admin-token';
  const charts = new Map();  // session id -> { chart, canvas }
  let refreshes = 0;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function mbit(bps) { return (Number(bps) / 1e6).toFixed(2) + ' Mbit/s'; }

  function bytes(n) {
    n = Number(n);
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; ++i; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
  }

  function token() {
    try { return sessionStorage.getItem(tokenKey) || ''; } catch (e) { return ''; }
  }

  async function api(path) {
    const headers = {};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const res = await fetch(path, { headers: headers, cache: 'no-store' });
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    return res.json();
  }

  function rates(t) {
    // Only the directions the test uses: the server's tx is the client's download.
    const p = el('p', null, 'rates');
    const add = (label, bps, active) => {
      if (!active) return;
      p.appendChild(el('span', label + ' '));
      const r = el('span', mbit(bps), 'rate');
      r.dataset.bps = String(bps);
      p.appendChild(r);
      p.appendChild(el('span', '  '));
    };
    add('server → client', t.tx_bits_per_second, t.direction !== 'transmit');
    add('client → server', t.rx_bits_per_second, t.direction !== 'receive');
    p.appendChild(el('span', '· ' + bytes(t.tx_bytes + t.rx_bytes) + ' moved, ' +
      Number(t.duration_s).toFixed(0) + ' s', 'muted'));
    return p;
  }

  function chartFor(t, box) {
    const labels = t.intervals.map((i) => Number(i.time_s).toFixed(0));
    const tx = t.intervals.map((i) => i.tx_bits_per_second / 1e6);
    const rx = t.intervals.map((i) => i.rx_bits_per_second / 1e6);
    let c = charts.get(t.id);
    if (typeof window.Chart !== 'function') {
      box.appendChild(el('p', 'Charts need Chart.js (Debian: libjs-chart.js) on the server.', 'muted'));
      return;
    }
    if (!c) {
      const canvas = el('canvas');
      canvas.width = 900;
      canvas.height = 220;
      canvas.setAttribute('aria-label', 'per-second rates of test ' + t.id);
      const chart = new window.Chart(canvas, {
        type: 'line',
        data: { labels: [], datasets: [
          { label: 'server → client (Mbit/s)', data: [], borderColor: '#2563eb', backgroundColor: '#2563eb', pointRadius: 0 },
          { label: 'client → server (Mbit/s)', data: [], borderColor: '#db2777', backgroundColor: '#db2777', pointRadius: 0 },
        ] },
        options: { animation: false, responsive: false,
          scales: { y: { beginAtZero: true, title: { display: true, text: 'Mbit/s' } },
                    x: { title: { display: true, text: 'seconds' } } } },
      });
      c = { chart: chart, canvas: canvas };
      charts.set(t.id, c);
    }
    const div = el('div', null, 'chart');
    div.appendChild(c.canvas);
    box.appendChild(div);
    c.chart.data.labels = labels;
    c.chart.data.datasets[0].data = tx;
    c.chart.data.datasets[1].data = rx;
    c.chart.data.datasets[0].hidden = t.direction === 'transmit';  // the directions the test uses
    c.chart.data.datasets[1].hidden = t.direction === 'receive';
    c.chart.update();
    c.canvas.dataset.points = String(labels.length);
    // What the chart painted (pixels not transparent): lets a test tell a drawn chart from an
    // empty canvas.
    const px = c.canvas.getContext('2d').getImageData(0, 0, c.canvas.width, c.canvas.height).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) ++painted;
    c.canvas.dataset.painted = String(painted);
  }

  function showLive(data) {
    const box = document.getElementById('live');
    const seen = new Set();
    box.replaceChildren();
    document.getElementById('live-empty').hidden = data.sessions.length > 0;
    for (const t of data.sessions) {
      seen.add(t.id);
      const s = el('div', null, 'session');
      s.dataset.sessionId = String(t.id);
      const h = el('h3');
      h.appendChild(el('span', '#' + t.id + ' '));
      h.appendChild(el('span', t.peer, 'peer'));
      h.appendChild(el('span', ' · '));
      h.appendChild(el('span', t.user === null ? '(no login)' : t.user, 'user'));
      h.appendChild(el('span', ' · ' + t.protocol + ' ' + t.direction + ', ' + t.connections +
        (t.protocol === 'udp' ? ' stream(s)' : ' connection(s)')));
      s.appendChild(h);
      s.appendChild(rates(t));
      box.appendChild(s);
      chartFor(t, s);
    }
    for (const [id, c] of charts) {
      if (!seen.has(id)) { c.chart.destroy(); charts.delete(id); }
    }
  }

  function showQuota(data) {
    const box = document.getElementById('quota');
    box.replaceChildren();
    const limited = data.quota.filter((q) => q.limit_bytes !== null);
    if (limited.length === 0) {
      box.appendChild(el('p', 'No quota limits your address.', 'muted'));
      return;
    }
    for (const q of limited) {
      const line = el('div', null, 'quota-line');
      line.appendChild(el('span', q.window));
      line.appendChild(el('span', q.direction));
      const bar = el('progress');
      bar.max = q.limit_bytes;
      bar.value = Math.min(q.used_bytes + q.reserved_bytes, q.limit_bytes);
      line.appendChild(bar);
      line.appendChild(el('span', bytes(q.used_bytes) + ' of ' + bytes(q.limit_bytes) + ' used, ' +
        bytes(q.remaining_bytes) + ' left'));
      box.appendChild(line);
    }
  }

  function showHistory(data) {
    const body = document.querySelector('#history tbody');
    body.replaceChildren();
    for (const r of data.sessions) {
      const tr = el('tr');
      const cells = [
        [r.id], [r.start.replace('T', ' ').replace('Z', ''), 'text'],
        [r.duration_s === null ? 'running' : Number(r.duration_s).toFixed(1)], [r.peer, 'text'],
        [r.user === null ? '-' : r.user, 'text user'], [r.protocol, 'text'], [r.direction, 'text'],
        [bytes(r.tx_bytes)], [bytes(r.rx_bytes)], [mbit(r.tx_bits_per_second)], [mbit(r.rx_bits_per_second)],
        [r.lost_packets], [r.ended_by === null ? '-' : (r.refused ? 'refused: ' : '') + r.ended_by, 'text'],
      ];
      for (const [v, cls] of cells) tr.appendChild(el('td', v, cls));
      body.appendChild(tr);
    }
  }

  async function refresh() {
    const status = document.getElementById('status');
    try {
      const info = await api('/api/v1/info');
      const lim = [];
      lim.push('version ' + info.version);
      lim.push('auth ' + info.auth);
      if (info.max_duration_s > 0) lim.push('tests up to ' + info.max_duration_s + ' s');
      lim.push(info.max_sessions + ' tests at once');
      document.getElementById('server').textContent = info.server_id + ' · ' + lim.join(' · ');
      document.getElementById('who').textContent = 'you: ' + (info.you.ip || '?') +
        (info.you.admin ? ' (admin: every address)' : ' (your address only)');
      for (const s of document.querySelectorAll('.scope')) s.textContent = info.you.admin ? '' : ' from your address';
      showLive(await api('/api/v1/live'));
      const q = info.you.admin ? null : await api('/api/v1/quota');
      if (q) showQuota(q); else document.getElementById('quota').replaceChildren(
        el('p', 'Per address: GET /api/v1/quota?ip=… or ?user=…', 'muted'));
      showHistory(await api('/api/v1/sessions?limit=25'));
      status.textContent = 'updated ' + new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
    } catch (e) {
      status.textContent = 'cannot reach the API: ' + e.message;
    }
    document.body.dataset.refreshes = String(++refreshes);
  }

  document.getElementById('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = document.getElementById('token');
    try { sessionStorage.setItem(tokenKey, input.value.trim()); } catch (e) { /* private mode */ }
    input.value = '';
    refresh();
  });
  document.getElementById('token-forget').addEventListener('click', () => {
    try { sessionStorage.removeItem(tokenKey); } catch (e) { /* private mode */ }
    refresh();
  });

  refresh();
  setInterval(refresh, 1000);
})();
