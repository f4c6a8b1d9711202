// The lab's topology drawn from its map (GET /api/v1/map, or a demo's
// saved map.json): what the live view (app.js) and a demo's replay
// (replay.js) both draw, with Cytoscape.js.
'use strict';

// The graph's elements from the map: every switch, VTEP, VM and server;
// cables (underlay, and each endpoint's attachment) and tunnels (overlay:
// between the members of a logical switch, and where BFD runs).
function elements(m) {
  const colours = m.colours || {};
  const nodes = [], edges = [];
  const add = (name, role, extra) => nodes.push({ data: Object.assign(
    { id: name, label: name, role: role, colour: colours[role] || '#fff' }, extra) });
  m.underlay.switches.forEach(s => add(s.name, s.role, {}));
  m.vteps.forEach(v => add(v.name, v.role, { health: v.health || 'unknown' }));
  m.endpoints.forEach(e => add(e.name, e.role, {}));
  const names = new Set(nodes.map(n => n.data.id));
  m.underlay.links.forEach(l => {
    if (names.has(l.a) && names.has(l.b))
      edges.push({ data: { id: `c:${l.a}:${l.a_intf}`, source: l.a, target: l.b, kind: 'cable' } });
  });
  m.endpoints.forEach(e => e.on.forEach(a => {
    if (names.has(a.node))
      edges.push({ data: { id: `c:${e.name}:${a.node}:${a.port}`, source: e.name, target: a.node, kind: 'cable' } });
  }));
  m.endpoints.filter(e => !e.on.length && e.cabled_to).forEach(e => {   // no bound port
    edges.push({ data: { id: `c:${e.name}:${e.cabled_to.node}`, source: e.name,
                         target: e.cabled_to.node, kind: 'cable', unbound: true } });
  });
  const carries = {};
  m.logical_switches.forEach(ls => ls.members.forEach(a => ls.members.forEach(b => {
    if (a < b) (carries[`${a}|${b}`] = carries[`${a}|${b}`] || []).push(ls.name);
  })));
  m.tunnels.forEach(t => {
    const lss = carries[`${t.a}|${t.b}`] || carries[`${t.b}|${t.a}`] || [];
    if (!t.bfd && !lss.length) return;
    edges.push({ data: { id: `t:${t.a}:${t.b}`, source: t.a, target: t.b, kind: 'tunnel',
                         state: t.state || 'unknown', lss: lss.join(' '), bfd: t.bfd } });
  });
  return nodes.concat(edges);
}

const STYLE = [
  { selector: 'node', style: { 'background-color': 'data(colour)', label: 'data(label)',
      'border-width': 1, 'border-color': '#555', shape: 'round-rectangle',
      width: 56, height: 26, 'font-size': 11, 'text-valign': 'center' } },
  { selector: 'node[health = "down"]', style: { 'background-color': '#d00', color: '#fff',
      'border-color': '#900', 'border-width': 3 } },
  { selector: 'edge[kind = "cable"]', style: { width: 2, 'line-color': '#999' } },
  { selector: 'edge[?unbound]', style: { 'line-style': 'dotted' } },
  // tunnels arc above the row of VTEPs, higher the farther apart the ends
  { selector: 'edge[kind = "tunnel"]', style: { width: 1.5, 'line-color': '#4a7fc1',
      'line-style': 'dashed', 'curve-style': 'unbundled-bezier', opacity: 0.7,
      'control-point-distances': e => arc(e), 'control-point-weights': 0.5 } },
  { selector: 'edge[state = "down"]', style: { 'line-color': '#d00', width: 3, opacity: 1 } },
  { selector: '.faded', style: { opacity: 0.15 } },
  { selector: '.hl', style: { 'border-width': 4, 'border-color': '#000', opacity: 1 } },
  { selector: 'edge.hl', style: { width: 4, 'line-color': '#000', opacity: 1 } },
];

function arc(e) {
  const a = e.source().position(), b = e.target().position();
  const d = 0.3 * Math.hypot(a.x - b.x, a.y - b.y);
  return a.x < b.x ? -d : d;                  // always bulge upwards
}

// A Cytoscape graph of map `m` in `container`, laid out from the spines
// down (`els`: elements(m), when the caller has them already).
function topology(container, m, els) {
  return cytoscape({ container: container, elements: els || elements(m),
    style: STYLE, layout: { name: 'breadthfirst', directed: false, spacingFactor: 1.1,
      roots: m.underlay.switches.filter(s => s.role === 'spine').map(s => s.name) } });
}

// The roles' colours present in graph `cy` (the footer #legend).
function legend(cy, m) {
  const f = document.getElementById('legend');
  f.textContent = '';
  const present = new Set(cy.nodes().map(n => n.data('role')));
  Object.entries(m.colours || {}).filter(([role]) => present.has(role)).forEach(([role, c]) => {
    f.appendChild(el('span', { style: `background:${c}` }, role));
  });
  f.appendChild(el('span', { style: 'background:#d00;color:#fff' }, 'down'));
  f.appendChild(el('span', { style: 'border-style:dashed' }, 'tunnel (dashed)'));
}
