// A demo's replay on the topology: the frames its captures saw
// (diagram.json, one arrow per frame that crossed from one box to
// another) drawn one by one on the lab's map as the controller served it
// at the end of the demo (map.json), act by act. ?run=demo-NAME/STAMP
// (the results page links every demo run that has both files).
'use strict';

const replay = window.nsxReplay = { cy: null, steps: [], k: 0, timer: null, error: null };
const PLAY_MS = 1200;

function stepsOf(d) {
  // every arrow with its act's title; an act with no arrow still shows
  const titles = {};
  d.rows.filter(r => !('src' in r)).forEach(r => { titles[r.act] = r.title; });
  return d.arrows.map((a, i) => Object.assign({ n: i + 1, title: titles[a.act] }, a));
}

function show(k) {
  const cy = replay.cy, steps = replay.steps;
  replay.k = Math.max(0, Math.min(k, steps.length));
  cy.remove('edge.arrow');
  cy.elements().removeClass('faded hl');
  const cur = steps[replay.k - 1];
  const act = cur ? cur.act : (steps[0] ? steps[0].act : null);
  document.getElementById('act').textContent = cur ? `Act ${cur.act}: ${cur.title}` :
    'Press ▶ (or the right arrow key) to step through the frames';
  const upto = steps.filter(s => s.act === act && s.n <= replay.k);
  const missing = [];
  upto.forEach(s => {
    if (!cy.getElementById(s.src).length || !cy.getElementById(s.dst).length) {
      missing.push(s.n);
      return;
    }
    const row = Math.abs(cy.getElementById(s.src).position().y -
                         cy.getElementById(s.dst).position().y) < 5;
    cy.add({ group: 'edges', classes: 'arrow' + (s === cur ? ' now' : '') + (row ? ' row' : ''),
             data: { id: `a${s.n}`, source: s.src, target: s.dst,
                     label: s === cur ? `${s.n}. ${s.label}  +${s.ms} ms` : String(s.n) } });
  });
  if (upto.length) {
    cy.elements().addClass('faded');
    const boxes = new Set(upto.flatMap(s => [s.src, s.dst]));
    cy.nodes().filter(n => boxes.has(n.id())).removeClass('faded').addClass('hl');
    cy.edges('.arrow').removeClass('faded');
  }
  document.getElementById('where').textContent = `frame ${replay.k} of ${steps.length}`;
  document.getElementById('now').textContent = cur ?
    `${cur.src} → ${cur.dst}: ${cur.label}, +${cur.ms} ms after the act's first frame` +
    (missing.length ? ` (frames ${missing.join(', ')}: a box not on the map)` : '') : '';
  document.querySelectorAll('#steps li').forEach(li => {
    li.className = Number(li.dataset.n) === replay.k ? 'selected' :
      Number(li.dataset.n) < replay.k ? 'done' : '';
  });
  const last = replay.k === steps.length && steps.length;
  cy.nodes().removeClass('nocopy');
  if (last) replay.noCopy.forEach(n => cy.getElementById(n).removeClass('faded').addClass('nocopy'));
  document.getElementById('nocopy').textContent = last && replay.noCopy.length ?
    `No copy reached: ${replay.noCopy.join(', ')}` : '';
}

function play() {
  const b = document.getElementById('play');
  if (replay.timer) {
    clearInterval(replay.timer); replay.timer = null; b.textContent = 'play'; return;
  }
  if (replay.k >= replay.steps.length) show(0);
  b.textContent = 'pause';
  replay.timer = setInterval(() => {
    if (replay.k >= replay.steps.length) return play();
    show(replay.k + 1);
  }, PLAY_MS);
}

function start(run, map, d) {
  document.getElementById('title').textContent = `Replay: ${run}`;
  replay.cy = topology(document.getElementById('cy'), map);
  replay.cy.style().selector('edge.arrow').style({
    'curve-style': 'bezier', 'control-point-step-size': 40,
    'target-arrow-shape': 'triangle', width: 3,
    'line-color': '#e07b00', 'target-arrow-color': '#e07b00', label: 'data(label)',
    'font-size': 10, 'text-background-color': '#fff', 'text-background-opacity': 0.8,
    'text-rotation': 'autorotate', opacity: 1 }).selector('edge.arrow.now').style({
    width: 5, 'line-color': '#c00', 'target-arrow-color': '#c00', 'font-weight': 'bold' })
    // an arrow between two boxes of one row arcs above it (a straight one
    // would cross the boxes between them, which saw nothing)
    .selector('edge.arrow.row').style({ 'curve-style': 'unbundled-bezier',
      'control-point-distances': e => arc(e), 'control-point-weights': 0.5 })
    .selector('node.nocopy').style({ 'border-style': 'dashed', 'border-color': '#c00',
      'border-width': 3, opacity: 1 })
    .update();
  legend(replay.cy, map);
  replay.steps = stepsOf(d);
  replay.noCopy = d.no_copy || [];
  const ol = document.getElementById('steps');
  let act = null;
  replay.steps.forEach(s => {
    if (s.act !== act) {
      act = s.act;
      ol.appendChild(el('li', { class: 'act' }, `Act ${s.act}: ${s.title}`));
    }
    const li = el('li', { 'data-n': s.n }, `${s.n}. ${s.src} → ${s.dst}  ${s.label}  +${s.ms} ms`);
    li.onclick = () => show(s.n);
    ol.appendChild(li);
  });
  show(0);
}

function fail(text) {
  replay.error = text;
  document.getElementById('act').textContent = text;
  document.getElementById('act').className = 'down';
}

const run = new URLSearchParams(location.search).get('run');
if (!run || !/^demo-[a-z0-9-]+\/\d{8}T\d{6}Z$/.test(run)) {
  fail('Which demo run? Open this page from the results page (a demo row\'s "replay"), ' +
       'or give ?run=demo-NAME/STAMP, e.g. ?run=demo-arp-flow/20261201T055307Z');
} else {
  const get = f => fetch(`/results/${run}/${f}`).then(r => {
    if (!r.ok) throw new Error(`${f} of ${run}: ${r.status} (a demo run of an older version has no map.json: run the demo again)`);
    return r.json();
  });
  Promise.all([get('map.json'), get('diagram.json')])
    .then(([map, d]) => start(run, map, d)).catch(e => fail(String(e.message || e)));
}
document.getElementById('first').onclick = () => show(0);
document.getElementById('prev').onclick = () => show(replay.k - 1);
document.getElementById('next').onclick = () => show(replay.k + 1);
document.getElementById('play').onclick = play;
document.addEventListener('keydown', ev => {
  if (!replay.cy) return;
  if (ev.key === 'ArrowRight') show(replay.k + 1);
  else if (ev.key === 'ArrowLeft') show(replay.k - 1);
  else if (ev.key === 'Home') show(0);
  else if (ev.key === ' ') { ev.preventDefault(); play(); }
});
