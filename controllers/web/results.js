// The results page: every run in results/ (GET /api/v1/results), newest
// first; a run's plots shown when its row is clicked.
'use strict';

const page = window.nsxResults = { data: null };

function when(stamp) {       // 20261201T084023Z -> 2026-12-01 08:40:23
  return `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)} ` +
    `${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}`;
}

// a demo that saved its frames (diagram.json) and the lab's map (map.json)
// can be replayed on the topology (replay.html)
function replayable(run) {
  return run.name.startsWith('demo-') && run.files.includes('diagram.json') &&
    run.files.includes('map.json');
}

function replayOf(run) {
  return `replay.html?run=${encodeURIComponent(run.name + '/' + run.stamp)}`;
}

function show(run) {
  const s = document.getElementById('shown');
  s.textContent = '';
  const base = `/results/${run.name}/${run.stamp}/`;
  s.appendChild(el('h2', {}, `${run.name} ${when(run.stamp)}`));
  run.files.filter(f => f.endsWith('.png')).forEach(f => {
    const fig = el('figure');
    fig.appendChild(el('img', { src: base + f, alt: f }));
    fig.appendChild(el('figcaption', {}, f));
    s.appendChild(fig);
  });
}

function render() {
  const q = document.getElementById('filter').value.trim();
  const body = document.querySelector('#runs tbody');
  body.textContent = '';
  const shown = page.data.runs.filter(r => !q || r.name.includes(q));
  shown.forEach(r => {
    const tr = el('tr', { 'data-run': `${r.name}/${r.stamp}` });
    tr.appendChild(el('td', {}, when(r.stamp)));
    tr.appendChild(el('td', {}, r.name));
    tr.appendChild(el('td', {}, r.topology || ''));
    const v = r.passed === null ? (r.problem || '?') : r.passed ? 'PASS' : 'FAIL';
    tr.appendChild(el('td', { class: r.passed ? 'pass' : 'fail' }, v));
    const files = el('td');
    if (replayable(r)) {
      files.appendChild(el('a', { href: replayOf(r), class: 'replay' }, 'replay on the topology'));
      files.appendChild(document.createTextNode(' '));
    }
    r.files.forEach(f => {
      files.appendChild(el('a', { href: `/results/${r.name}/${r.stamp}/${f}` }, f));
      files.appendChild(document.createTextNode(' '));
    });
    tr.appendChild(files);
    tr.onclick = ev => { if (ev.target.tagName !== 'A') show(r); };
    body.appendChild(tr);
  });
  document.getElementById('count').textContent =
    `${shown.length} of ${page.data.total} runs`;
}

fetch('/api/v1/results').then(r => r.json()).then(data => {
  page.data = data;
  const rep = document.getElementById('report');
  if (data.report.includes('report.png')) {
    rep.appendChild(el('h2', {}, 'Summary (./run.py report)'));
    rep.appendChild(el('img', { src: '/results/report.png', alt: 'report', class: 'report' }));
  }
  if (data.report.includes('report.md'))
    rep.appendChild(el('a', { href: '/results/report.md' }, 'report.md'));
  render();
});
document.getElementById('filter').oninput = render;
