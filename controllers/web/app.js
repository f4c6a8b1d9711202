// The lab's web view: the map the controller serves (GET /api/v1/map),
// drawn with Cytoscape.js and kept live by the map's event stream
// (/api/v1/map/events: the whole map again whenever it changed).
'use strict';

const API = '/api/v1';
const view = window.nsxView = { map: null, cy: null, updates: 0, selected: null };

function table(rows) {
  const t = el('table');
  rows.filter(r => r[1] !== undefined && r[1] !== null && r[1] !== '')
    .forEach(([k, v, cls]) => {
      const tr = el('tr');
      tr.appendChild(el('td', {}, k));
      tr.appendChild(el('td', cls ? { class: cls } : {}, String(v)));
      t.appendChild(tr);
    });
  return t;
}

function layers() {
  const under = document.getElementById('show-underlay').checked;
  const over = document.getElementById('show-overlay').checked;
  view.cy.edges('[kind = "cable"]').style('display', under ? 'element' : 'none');
  view.cy.edges('[kind = "tunnel"]').style('display', over ? 'element' : 'none');
}

function draw(m) {
  const els = elements(m);
  const ids = els.map(e => e.data.id).sort().join(',');
  if (!view.cy || view.ids !== ids) {         // new elements: lay out again
    if (view.cy) view.cy.destroy();
    view.cy = topology(document.getElementById('cy'), m, els);
    view.ids = ids;
    view.cy.on('tap', 'node', ev => select(ev.target.id()));
    view.cy.on('tap', ev => { if (ev.target === view.cy) select(null); });
  } else {                                     // same elements: new states
    els.forEach(e => view.cy.getElementById(e.data.id).data(e.data));
  }
  layers();
}

// what is down, in words, above the graph (whatever is selected)
function alerts(m) {
  const nodes = m.vteps.filter(v => v.health === 'down').map(v => v.name);
  const tunnels = m.tunnels.filter(t => t.state === 'down').map(t => `${t.a}-${t.b}`);
  const a = document.getElementById('alerts');
  const words = [];
  if (nodes.length) words.push(`down: ${nodes.join(', ')}`);
  if (tunnels.length) words.push(`BFD down: ${tunnels.join(', ')}`);
  a.textContent = words.join('; ');
  a.className = words.length ? 'down' : '';
}

function switches(m) {
  // the list is made again only when what it says changed (an element
  // being clicked stays the one on the page)
  const ul = document.getElementById('switches');
  const text = ls => `${ls.name}  VNI ${ls.vni}  (${ls.members.length} VTEPs)`;
  const sig = m.logical_switches.map(text).join('|');
  if (view.listed !== sig) {
    ul.textContent = '';
    m.logical_switches.forEach(ls => {
      const li = el('li', { 'data-ls': ls.name }, text(ls));
      li.onclick = () => select('ls:' + ls.name);
      ul.appendChild(li);
    });
    view.listed = sig;
  }
  ul.querySelectorAll('li').forEach(li => {
    li.className = view.selected === 'ls:' + li.dataset.ls ? 'selected' : '';
  });
}

function highlight(names) {
  const cy = view.cy;
  cy.elements().removeClass('faded hl');
  if (!names) return;
  const set = cy.collection(names.map(n => cy.getElementById(n)).filter(x => x.length));
  cy.elements().addClass('faded');
  set.removeClass('faded').addClass('hl');
  set.edgesWith(set).removeClass('faded').addClass('hl');
}

// A device's tables, asked of it through the controller while the device
// is selected (GET /transport-nodes/NAME/tables, every 2 s): a switch's
// MAC table, port counters and flows; a hardware VTEP's bindings, MACs,
// flooding lists and BFD.
const tablesOf = view.tables = { name: null, timer: null, data: null, error: null };

function watchTables(name) {
  if (tablesOf.name === name) return;
  clearInterval(tablesOf.timer);
  Object.assign(tablesOf, { name: name, timer: null, data: null, error: null });
  if (!name) return;
  const load = () => fetch(`${API}/transport-nodes/${name}/tables`)
    .then(r => r.json().then(b => [r.ok, b]))
    .then(([ok, b]) => {
      if (tablesOf.name !== name) return;
      tablesOf.data = ok ? b : null;
      tablesOf.error = ok ? null : (b.error ? b.error.message : JSON.stringify(b));
      showTables();
    })
    .catch(e => { if (tablesOf.name === name) { tablesOf.error = String(e); showTables(); } });
  load();
  tablesOf.timer = setInterval(load, 2000);
}

function grid(head, rows, cls) {
  const t = el('table', { class: 'grid ' + (cls || '') });
  const tr = el('tr');
  head.forEach(h => tr.appendChild(el('th', {}, h)));
  t.appendChild(tr);
  rows.forEach(r => {
    const row = el('tr');
    r.forEach(c => row.appendChild(el('td', c && c.down ? { class: 'down' } : {},
                                      String(c && c.down ? c.text : c === null ? '' : c))));
    t.appendChild(row);
  });
  return t;
}

// Two counters added, '-' when the port keeps neither (null: OVS's tunnel
// ports keep no drops or errors), red when above 0.
function sum(a, b) {
  if (a === null && b === null) return '-';
  const n = (a || 0) + (b || 0);
  return n ? { down: true, text: n } : 0;
}

// The distributed firewall at a hypervisor's VM ports (the tables' read):
// per port, each rule that meets it with the packets it passed or dropped
// each way, then the firewall's own verdicts; a drop rule that counted
// packets in red.
function firewall(box, fw, h) {
  const n = c => c ? `${c.out} / ${c.in}` : '-';
  const rows = [];
  fw.ports.filter(p => p.protected).forEach(p => {
    p.rules.forEach(r => rows.push([p.vm, `${r.priority} ${r.name}`, r.action,
      r.ways.join('/'), r.action === 'drop' && r.packets && (r.packets.out + r.packets.in)
        ? { down: true, text: n(r.packets) } : n(r.packets)]));
    rows.push([p.vm, 'established', 'pass', 'out/in', n(p.established)]);
    rows.push([p.vm, 'no rule matched', 'allow', 'out/in', n(p.default)]);
  });
  h(`firewall (${fw.rules.length} rules)`);
  box.appendChild(grid(['VM', 'rule', 'action', 'ways', 'packets out / in'], rows, 'firewall'));
}

function showTables() {
  const box = document.getElementById('tables');
  if (!box) return;
  box.textContent = '';
  const t = tablesOf.data;
  if (!t) {
    box.appendChild(el('p', { class: tablesOf.error ? 'down' : '' },
                       tablesOf.error || 'asking the device...'));
    return;
  }
  const h = text => box.appendChild(el('h3', {}, text));
  const macs = t.macs.map(m => [m.ls || m.vni, `${m.mac}${m.host ? ' (' + m.host + ')' : ''}`,
                                m.to.join(', ')]);
  if (t.source === 'openflow') {
    h(`MAC table (${t.macs.length})`);
    box.appendChild(grid(['switch', 'MAC', 'to'], macs, 'macs'));
    h('ports');
    box.appendChild(grid(['port', 'rx pkts', 'tx pkts', 'drops', 'errors'],
      t.ports.map(p => [p.name, p.rx_packets, p.tx_packets,
                        sum(p.rx_dropped, p.tx_dropped), sum(p.rx_errors, p.tx_errors)]), 'ports'));
    if (t.firewall && t.firewall.rules.length) firewall(box, t.firewall, h);
    const d = el('details', { class: 'flows' });
    d.appendChild(el('summary', {}, `flows (${t.flows.length})`));
    d.appendChild(el('pre', {}, t.flows.map(f => `${String(f.packets).padStart(8)}  ${f.flow}`).join('\n')));
    box.appendChild(d);
  } else {
    h('bindings');
    box.appendChild(grid(['port', 'VLAN', 'switch', 'VNI'],
      t.bindings.map(b => [b.port, b.vlan, b.ls, b.vni]), 'bindings'));
    h(`MACs (${t.macs.length})`);
    box.appendChild(grid(['switch', 'MAC', 'at'], macs, 'macs'));
    h('flooding');
    box.appendChild(grid(['switch', 'to'], t.flooding.map(f => [f.ls, f.to.join(', ')])));
    h('BFD');
    box.appendChild(grid(['peer', 'state'], t.bfd.map(b =>
      [`${b.peer} (${b.ip})`, b.state === 'up' ? 'up' : { down: true, text: b.state || 'unknown' }]), 'bfd'));
  }
  box.appendChild(el('p', { class: 'note' }, `read from its ${t.source}, every 2 s`));
}

function details(title, body) {
  document.getElementById('details-title').textContent = title;
  const d = document.getElementById('details');
  d.textContent = '';
  body.forEach(b => d.appendChild(b));
}

function select(name) {
  view.selected = name;
  const m = view.map;
  if (!name || !m.vteps.some(v => v.name === name)) watchTables(null);
  if (!name) { highlight(null); details('Details', []); switches(m); return; }
  if (name.startsWith('ls:')) {
    const ls = m.logical_switches.find(x => x.name === name.slice(3));
    if (!ls) return select(null);
    const eps = m.endpoints.filter(e => e.ls === ls.name);
    highlight(ls.members.concat(eps.map(e => e.name)));
    details(`Logical switch ${ls.name}`, [
      table([['VNI', ls.vni], ['replication', ls.replication_mode], ['subnet', ls.subnet],
             ['members', ls.members.join(', ')],
             ['endpoints', eps.map(e => e.name).join(', ')]]),
      el('pre', { class: 'bindings' }, ls.bindings.map(
        b => `${b.gateway} port ${b.port} VLAN ${b.vlan} <-> VNI ${ls.vni}`).join('\n'))]);
  } else if (m.paths && m.paths[name]) {
    const e = m.endpoints.find(x => x.name === name);
    highlight([name].concat(e.on.map(a => a.node), e.on.map(a => a.leaf).filter(Boolean)));
    details(`${e.role} ${name}`, [
      table([['logical switch', e.ls], ['IP', e.ip], ['MAC', e.mac]]),
      el('pre', { class: 'path' }, m.paths[name].join('\n'))]);
  } else {
    const v = m.vteps.find(x => x.name === name);
    const s = m.underlay.switches.find(x => x.name === name);
    highlight([name]);
    if (v) {
      const rows = [['role', v.role], ['tunnel IP', v.tunnel_ip], ['management IP', v.mgmt_ip],
        ['leaf', Array.isArray(v.leaf) ? v.leaf.join(', ') : v.leaf],
        ['health', v.health || 'unknown', v.health === 'down' ? 'down' : ''],
        ['floods via', v.service_node_in_use],
        ['service nodes', (v.service_nodes || []).join(' > ')]];
      Object.entries(v.sessions || {}).forEach(([k, up]) =>
        rows.push([`${k} session`, up ? 'up' : 'DOWN', up ? '' : 'down']));
      Object.entries(v.segments || {}).forEach(([seg, role]) => rows.push([`on ${seg}`, role]));
      if (v.controller) rows.push(['controller', `${v.controller.active} (standby ${v.controller.standby})`]);
      const tun = m.tunnels.filter(t => (t.a === name || t.b === name) && t.bfd);
      tun.forEach(t => rows.push([`BFD to ${t.a === name ? t.b : t.a}`, t.state || 'not followed',
                                  t.state === 'down' ? 'down' : '']));
      details(`${v.role} ${name}`, [table(rows), el('div', { id: 'tables' })]);
      watchTables(name);
      showTables();
    } else if (s) {
      details(`${s.role} ${name}`, [table([['management IP', s.mgmt_ip], ['AS', s.asn]])]);
    }
  }
  switches(m);
}

function update(m) {
  view.map = m;
  view.updates += 1;
  document.getElementById('lab').textContent = `${m.lab} (${m.underlay.fabric})`;
  draw(m);
  legend(view.cy, m);
  alerts(m);
  if (view.selected) select(view.selected); else switches(m);
}

function live() {
  const badge = document.getElementById('live');
  const src = new EventSource(API + '/map/events');
  src.onmessage = ev => {
    badge.textContent = 'live'; badge.className = 'live';
    update(JSON.parse(ev.data));
  };
  src.onerror = () => { badge.textContent = 'disconnected: retrying'; badge.className = 'stale'; };
}

document.getElementById('show-underlay').onchange = layers;
document.getElementById('show-overlay').onchange = layers;
live();
