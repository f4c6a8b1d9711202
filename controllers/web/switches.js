// Logical switches, their ports and gateway bindings, through the same
// API a script uses: reads need nothing, writes the lab's token (kept in
// this tab only). A refused write shows the API's own error, naming the
// field; nothing changed then.
'use strict';

const API = '/api/v1';
const page = window.nsxSwitches = { loads: 0 };
const tokenBox = document.getElementById('token');
tokenBox.value = sessionStorage.getItem('nsx-token') || '';
tokenBox.onchange = () => sessionStorage.setItem('nsx-token', tokenBox.value.trim());

function say(text) {
  document.getElementById('error').textContent = text || '';
}

async function call(method, path, body) {
  const headers = { 'content-type': 'application/json' };
  const token = tokenBox.value.trim();
  if (method !== 'GET' && token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(API + path, { method, headers,
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const e = (data && data.error) || {};
    throw new Error(`${r.status} ${e.field || ''}: ${e.message || text}`);
  }
  return data;
}

async function write(method, path, body) {
  try {
    await call(method, path, body);
    say('');
    await load();
  } catch (err) {
    say(err.message);
  }
}

function button(text, onclick) {
  const b = el('button', { type: 'button' }, text);
  b.onclick = onclick;
  return b;
}

async function load() {
  const [lss, conns] = await Promise.all([call('GET', '/logical-switches'),
                                          call('GET', '/gateway-connections')]);
  const ports = await Promise.all(lss.map(ls => call('GET', `/logical-switches/${ls.id}/ports`)));
  const box = document.getElementById('switches');
  box.textContent = '';
  const sel = document.querySelector('#new-gwc select');
  sel.textContent = '';
  lss.forEach((ls, i) => {
    sel.appendChild(el('option', { value: ls.id }, ls.name));
    const sec = el('section', { 'data-ls': ls.name });
    const h = el('h2', {}, `${ls.name}  VNI ${ls.vni}  ${ls.subnet || ''}  (${ls.replication_mode}) `);
    h.appendChild(button('Delete', () => write('DELETE', `/logical-switches/${ls.id}`)));
    sec.appendChild(h);
    const ul = el('ul');
    ports[i].forEach(p => {
      const li = el('li', {}, `port ${p.id}: ${p.attachment} on ${p.transport_node || 'no hypervisor yet'} ${p.mac || ''} ${p.ip || ''} `);
      li.appendChild(button('Detach', () => write('DELETE', `/logical-ports/${p.id}`)));
      ul.appendChild(li);
    });
    conns.filter(c => c.ls_id === ls.id).forEach(c => {
      const li = el('li', {}, `binding ${c.id}: ${c.gateway} port ${c.port} VLAN ${c.vlan} <-> VNI ${ls.vni} `);
      li.appendChild(button('Unbind', () => write('DELETE', `/gateway-connections/${c.id}`)));
      ul.appendChild(li);
    });
    sec.appendChild(ul);
    const attach = el('form', { class: 'attach' });
    attach.appendChild(el('input', { name: 'attachment', size: 8, placeholder: 'vm7' }));
    attach.appendChild(el('button', { type: 'submit' }, 'Attach a VM'));
    attach.onsubmit = ev => {
      ev.preventDefault();
      write('POST', `/logical-switches/${ls.id}/ports`, { attachment: attach.elements.attachment.value.trim() });
    };
    sec.appendChild(attach);
    box.appendChild(sec);
  });
  page.loads += 1;
}

// a number field as the API wants it: an integer when it reads as one,
// else what was typed (the API says what is wrong with it)
function num(v) {
  return /^-?\d+$/.test(v.trim()) ? Number(v) : v;
}

document.getElementById('new-ls').onsubmit = ev => {
  ev.preventDefault();
  const f = ev.target.elements;
  const body = { name: f.name.value.trim(), vni: num(f.vni.value) };
  if (f.subnet.value.trim()) body.subnet = f.subnet.value.trim();
  write('POST', '/logical-switches', body);
};
document.getElementById('new-gwc').onsubmit = ev => {
  ev.preventDefault();
  const f = ev.target.elements;
  write('POST', '/gateway-connections', { ls_id: num(f.ls_id.value), gateway: f.gateway.value.trim(),
    port: f.port.value.trim(), vlan: num(f.vlan.value || '0') });
};
load().catch(err => say(err.message));
