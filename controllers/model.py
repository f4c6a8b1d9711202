"""Desired state of the NSX-like controller, in SQLite.

Tables (written only through this module, which the API calls):
  logical_switches(id, name UNIQUE, vni UNIQUE, replication_mode, subnet)
      (subnet: optional CIDR; a port's ip must lie in it, or, without it,
      in the same network as the switch's other ports)
  logical_ports(id, ls_id, attachment, transport_node, ofport, mac, ip,
      tags)
      (mac and ip unique within a logical switch; one port per attachment;
      tags a JSON list of words, what security groups select by;
      transport_node '' while the VM's vNIC is plugged nowhere: the port
      is unbound, the API shows null, and it is in no device's intent)

  gateway_connections(id, ls_id, gateway, port, vlan)
      (one gateway port + VLAN binds to one logical switch)
  security_groups(id, name UNIQUE, body), firewall_rules(id, name UNIQUE,
      body): the distributed firewall (controllers.dfw), body its
      canonical fields as JSON
  service_vms(id, name UNIQUE, body), steering_rules(id, name UNIQUE,
      body): service steering (controllers.steering), likewise

Transport nodes are not stored: they are the lab's inventory (read-only),
given to the store at start. Every write validates first and changes
nothing on error: ApiError names the field and the fix, with the HTTP status
the API returns (400 bad value, 404 unknown id, 409 conflict).

What every device accepts, hence what is accepted here (docs/api.md):
names of logical switches are NAME_RE (letters, digits, '.', '_', '-',
1..63, a letter or digit first: a word for vtep-ctl, ovs-vsctl and a file
name, with no quoting); a port's MAC is a unicast, non-zero MAC (a group
MAC would be installed as one port's unicast destination and dropped by
split horizon, breaking the switch's broadcast); ids are 1..2**63-1
(SQLite's integers).
"""
import ipaddress
import json
import re
import sqlite3
import threading

REPLICATION_MODES = ('service_node', 'source_node')
MAC_RE = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$')
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$')
MAX_ID = 2 ** 63 - 1
TAG_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:=/-]{0,63}$')
MAX_TAGS = 30                # NSX's limit per object
UNBOUND = ''                 # logical_ports.transport_node of an unbound port

SCHEMA = """
CREATE TABLE IF NOT EXISTS logical_switches (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    vni INTEGER NOT NULL UNIQUE, replication_mode TEXT NOT NULL,
    subnet TEXT);
CREATE TABLE IF NOT EXISTS logical_ports (
    id INTEGER PRIMARY KEY,
    ls_id INTEGER NOT NULL REFERENCES logical_switches(id),
    attachment TEXT NOT NULL UNIQUE, transport_node TEXT NOT NULL,
    ofport INTEGER NOT NULL, mac TEXT NOT NULL, ip TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    UNIQUE (ls_id, mac));
CREATE TABLE IF NOT EXISTS gateway_connections (
    id INTEGER PRIMARY KEY,
    ls_id INTEGER NOT NULL REFERENCES logical_switches(id),
    gateway TEXT NOT NULL, port TEXT NOT NULL, vlan INTEGER NOT NULL,
    UNIQUE (gateway, port, vlan));
CREATE TABLE IF NOT EXISTS security_groups (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS firewall_rules (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS service_vms (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steering_rules (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
"""


class ApiError(Exception):
    def __init__(self, status, field, message):
        self.status, self.field, self.message = status, field, message
        super().__init__(f'{field}: {message}')

    def body(self):
        return {'error': {'field': self.field, 'message': self.message}}


def _require(body, key, kind, status=400):
    if key not in body:
        raise ApiError(status, key, f'required ({kind})')
    return body[key]


def _check_fields(body, allowed):
    """body must be a JSON object with no field outside `allowed`."""
    if not isinstance(body, dict):
        raise ApiError(400, 'body', 'a JSON object')
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(400, unknown[0] or 'body', f'unknown field '
                       f'{unknown[0]!r}; allowed: ' + ', '.join(allowed))


def check_id(value, field, what):
    """An id as the API takes it (path or body): an integer 1..MAX_ID, or
    ApiError 400 naming `field`."""
    if not isinstance(value, int) or isinstance(value, bool) or \
            not 1 <= value <= MAX_ID:
        raise ApiError(400, field, f'{what} id is an integer 1..{MAX_ID}')
    return value


def check_mac(value, field='mac'):
    """-> value if it is a lower-case unicast MAC that is not all zero."""
    if not isinstance(value, str) or not MAC_RE.match(value):
        raise ApiError(400, field, 'a MAC like 02:00:00:00:00:01 (lower case)')
    if int(value[:2], 16) & 1:
        raise ApiError(400, field, f'{value} is a group (multicast or '
                       'broadcast) MAC; a port needs a unicast MAC (first '
                       'octet even, e.g. 02:...)')
    if value == '00:00:00:00:00:00':
        raise ApiError(400, field, 'the all-zero MAC is no address; give the '
                       "VM's unicast MAC")
    return value


def check_tags(value, field='tags'):
    """-> the sorted set of a port's (or a group's) tags: a list of at most
    MAX_TAGS words like "tier=web" (NSX's scope and tag, joined as you
    like)."""
    if not isinstance(value, list) or not all(isinstance(t, str)
                                              for t in value):
        raise ApiError(400, field, 'a list of tags, e.g. ["tier=web", '
                       '"pci"]')
    for i, t in enumerate(value):
        if not TAG_RE.match(t):
            raise ApiError(400, f'{field}[{i}]', f'{t!r} is no tag: 1..64 '
                           'letters, digits, ".", "_", "-", ":", "=" or '
                           '"/", starting with a letter or digit')
    if len(set(value)) > MAX_TAGS:
        raise ApiError(400, field, f'{len(set(value))} tags; at most '
                       f'{MAX_TAGS}')
    return sorted(set(value))


def check_name(value, field='name'):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ApiError(400, field, 'a name of 1..63 letters, digits, ".", "_"'
                       ' or "-", starting with a letter or digit (no spaces or'
                       ' quotes: it is used as a word by the devices\' tools)')
    return value


def check_subnet(value, field='subnet'):
    """-> the network in canonical form ('10.1.0.0/16'), or None."""
    if value is None:
        return None
    try:
        if not isinstance(value, str) or '/' not in value:
            raise ValueError
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise ApiError(400, field, 'a network with prefix and no host bits, '
                       'e.g. 10.1.0.0/16 (or null for none)') from None


def in_subnet(ip, subnet):
    """Is interface address `ip` ('10.1.0.11/16') a host of network
    `subnet` with its prefix length?"""
    return ipaddress.ip_interface(ip).network == \
        ipaddress.ip_network(subnet)


def _own_priority(rules, row, rule_id, what):
    """ApiError 409 if another of `rules` (not `rule_id`) has `row`'s
    priority: each rule has its own place in the order."""
    same = [r for r in rules if r['priority'] == row['priority'] and
            r['id'] != rule_id]
    if same:
        raise ApiError(409, 'priority', f"{what} {same[0]['name']!r} has "
                       f"priority {row['priority']}: each rule has its own "
                       'place in the order')


def check_ip(value, subnet, others, field='ip'):
    """-> the interface address in canonical form ('10.1.0.11/16'). It must
    be an address with a prefix, a host of `subnet` (the switch's) with the
    switch's prefix, or, without a subnet, in the network of each of
    `others` (the switch's other ports' ip)."""
    try:
        if not isinstance(value, str) or '/' not in value:
            raise ValueError
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise ApiError(400, field, 'an address with prefix, e.g. '
                       '10.1.0.11/24') from None
    net = iface.network
    if subnet is not None and not in_subnet(value, subnet):
        raise ApiError(400, field, f'{value} is not a host of the logical '
                       f"switch's subnet {subnet} (same prefix length)")
    for other in others:
        if other is not None and ipaddress.ip_interface(other).network != net:
            raise ApiError(400, field, f'{value} is not in the network of the '
                           f"switch's other ports ({other}); set the switch's"
                           ' subnet or use an address in that network')
    if net.num_addresses > 2 and iface.ip in (net.network_address,
                                               net.broadcast_address):
        raise ApiError(400, field, f'{iface.ip} is the network or broadcast '
                       f'address of {net}; give a host address')
    return str(iface)


class Store:
    """Desired state. `inventory` maps attachment (VM) name -> where it is:
    {'transport_node', 'ofport', 'mac', 'ip'}; `nodes` maps transport node
    name -> {'role', 'tunnel_ip'}."""

    def __init__(self, path=':memory:', inventory=None, nodes=None):
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        cols = {r[1] for r in self.db.execute(
            'PRAGMA table_info(logical_switches)')}
        if 'subnet' not in cols:         # a database from before subnets
            self.db.execute('ALTER TABLE logical_switches ADD COLUMN subnet '
                            'TEXT')
        self.lock = threading.RLock()
        self.inventory = inventory or {}
        self.nodes = nodes or {}
        self.generation = 0       # bumped on every committed change
        self._changed = threading.Condition()

    # -- logical switches -------------------------------------------------
    def create_ls(self, body):
        with self.lock:
            row = self._ls_fields(body, partial=False)
            self._check_unique_ls(row)
            cur = self.db.execute(
                'INSERT INTO logical_switches (name, vni, replication_mode, '
                'subnet) VALUES (?, ?, ?, ?)',
                (row['name'], row['vni'], row['replication_mode'],
                 row.get('subnet')))
            self._commit()
            return self.get_ls(cur.lastrowid)

    def update_ls(self, ls_id, body):
        with self.lock:
            cur = self.get_ls(ls_id)
            row = dict(cur, **self._ls_fields(body, partial=True))
            self._check_unique_ls(row, ls_id)
            if row['subnet'] is not None:
                for p in self.list_ports(ls_id):
                    if p['ip'] is not None and not in_subnet(
                            p['ip'], row['subnet']):
                        raise ApiError(409, 'subnet', f"port {p['id']} "
                                       f"({p['attachment']}) has {p['ip']}, "
                                       f"not a host of {row['subnet']}; "
                                       'detach it first or pick its subnet')
            self.db.execute(
                'UPDATE logical_switches SET name=?, vni=?, replication_mode=?'
                ', subnet=? WHERE id=?', (row['name'], row['vni'],
                                          row['replication_mode'],
                                          row['subnet'], ls_id))
            self._commit()
            return self.get_ls(ls_id)

    def delete_ls(self, ls_id):
        with self.lock:
            self.get_ls(ls_id)
            n = self.db.execute('SELECT COUNT(*) FROM logical_ports WHERE '
                                'ls_id=?', (ls_id,)).fetchone()[0]
            n += self.db.execute('SELECT COUNT(*) FROM gateway_connections '
                                 'WHERE ls_id=?', (ls_id,)).fetchone()[0]
            if n:
                raise ApiError(409, 'id', f'logical switch {ls_id} still has '
                               f'{n} port(s) or gateway connection(s); '
                               'detach them first')
            name = self.get_ls(ls_id)['name']
            users = [f"group {g['name']}" for g in self.list_groups()
                     if name in g['logical_switches']] + \
                [f"rule {r['name']}" for r in self.list_rules()
                 if r['applied_to'] == name] + \
                [f"steering rule {r['name']}" for r in
                 self.list_steering_rules() if r['applied_to'] == name]
            if users:
                raise ApiError(409, 'id', f'the firewall names logical '
                               f"switch {name!r}: {', '.join(users)}; "
                               'change them first')
            self.db.execute('DELETE FROM logical_switches WHERE id=?',
                            (ls_id,))
            self._commit()

    def get_ls(self, ls_id, field='id'):
        check_id(ls_id, field, 'a logical switch')
        row = self.db.execute('SELECT * FROM logical_switches WHERE id=?',
                              (ls_id,)).fetchone()
        if row is None:
            raise ApiError(404, field, f'no logical switch {ls_id}; list them '
                           'with GET /api/v1/logical-switches')
        return dict(row)

    def list_ls(self):
        return [dict(r) for r in self.db.execute(
            'SELECT * FROM logical_switches ORDER BY id')]

    def _ls_fields(self, body, partial):
        _check_fields(body, ('name', 'vni', 'replication_mode', 'subnet'))
        out = {}
        if 'name' in body or not partial:
            out['name'] = check_name(_require(body, 'name', 'a name'))
        if 'vni' in body or not partial:
            vni = _require(body, 'vni', 'integer 1..16777215')
            if not isinstance(vni, int) or isinstance(vni, bool) or \
                    not 1 <= vni <= 16777215:
                raise ApiError(400, 'vni', 'a VNI is an integer 1..16777215')
            out['vni'] = vni
        mode = body.get('replication_mode',
                        None if partial else 'service_node')
        if mode is not None:
            if mode not in REPLICATION_MODES:
                raise ApiError(400, 'replication_mode', 'use service_node '
                               'or source_node')
            out['replication_mode'] = mode
        if 'subnet' in body:
            out['subnet'] = check_subnet(body['subnet'])
        return out

    def _check_unique_ls(self, row, ls_id=None):
        for field in ('vni', 'name'):
            other = self.db.execute(
                f'SELECT id FROM logical_switches WHERE {field}=? AND id IS '
                'NOT ?', (row[field], ls_id)).fetchone()
            if other:
                raise ApiError(409, field, f'{field} {row[field]!r} is already '
                               f'used by logical switch {other[0]}')

    # -- logical ports ------------------------------------------------------
    def attach(self, ls_id, body):
        with self.lock:
            ls = self.get_ls(ls_id)
            _check_fields(body, ('attachment', 'mac', 'ip', 'tags'))
            att = _require(body, 'attachment', 'a VM name')
            if not isinstance(att, str):
                raise ApiError(400, 'attachment', 'a VM name (string); see '
                               'GET /api/v1/transport-nodes')
            where = self.inventory.get(att)
            if where is None:
                raise ApiError(404, 'attachment', f'no VM {att!r} in this '
                               'lab; see GET /api/v1/transport-nodes')
            mac = check_mac(body.get('mac', where['mac']))
            tags = check_tags(body.get('tags', []))
            ip = body.get('ip', where.get('ip'))
            if ip is not None:
                ip = check_ip(ip, ls['subnet'], [r[0] for r in self.db.execute(
                    'SELECT ip FROM logical_ports WHERE ls_id=?', (ls_id,))])
            if self.db.execute('SELECT 1 FROM logical_ports WHERE '
                               'attachment=?', (att,)).fetchone():
                raise ApiError(409, 'attachment', f'{att} is already attached;'
                               ' detach it first')
            for field, value in (('mac', mac), ('ip', ip)):
                if value is None:
                    continue
                col = 'mac' if field == 'mac' else 'ip'
                clash = self.db.execute(
                    f'SELECT attachment FROM logical_ports WHERE ls_id=? AND '
                    f'{col}=?', (ls_id, value)).fetchone()
                if clash:
                    raise ApiError(409, field, f'{value} is already used by '
                                   f'{clash[0]} in this logical switch')
            cur = self.db.execute(
                'INSERT INTO logical_ports (ls_id, attachment, transport_node,'
                ' ofport, mac, ip, tags) VALUES (?, ?, ?, ?, ?, ?, ?)',
                (ls_id, att, where['transport_node'] or UNBOUND,
                 where['ofport'] or 0, mac, ip, json.dumps(tags)))
            self._commit()
            return self.get_port(cur.lastrowid)

    def tag_port(self, port_id, body):
        """Replace a logical port's tags: body {"tags": [...]}. The
        security groups that select by tag follow (their members, the
        firewall's flows, a service VM's address sets). -> the port."""
        with self.lock:
            self.get_port(port_id)
            _check_fields(body, ('tags',))
            tags = check_tags(_require(body, 'tags', 'a list of tags, e.g. '
                                       '["tier=web"] ([] for none)'))
            self.db.execute('UPDATE logical_ports SET tags=? WHERE id=?',
                            (json.dumps(tags), port_id))
            self._commit()
            return self.get_port(port_id)

    def request_move(self, port_id, body):
        """A VM is about to move (a vMotion starts): its logical port is to
        be bound on hypervisor body['transport_node'] once the VIF appears
        there (see locate); until then the port stays where it is, and a
        VIF of the VM seen on any third hypervisor is not bound. -> the
        port, with 'requested_node'. The request is kept in memory: a
        controller restarted during a move forgets it (the binding follows
        the VIF as without a request)."""
        with self.lock:
            port = self.get_port(port_id)
            _check_fields(body, ('transport_node',))
            node = _require(body, 'transport_node', 'a hypervisor name')
            hvs = sorted(n for n, p in self.nodes.items()
                         if p.get('role') == 'hypervisor')
            if not isinstance(node, str) or node not in hvs:
                raise ApiError(400, 'transport_node',
                               f'no hypervisor {node!r}; hypervisors: '
                               + ', '.join(hvs))
            if node == port['transport_node']:
                raise ApiError(409, 'transport_node',
                               f"{port['attachment']} is on {node} already")
            self.inventory[port['attachment']]['requested'] = node
            return self.get_port(port_id)

    def locate(self, attachment, transport_node, ofport):
        """A hypervisor announced `attachment`'s VIF on its port `ofport`
        (controllers.nodedb): that is where the VM is now, and where its
        logical port, if any, is bound. -> True if that changed anything.
        A VIF the lab's inventory does not know is ignored; while a move
        is requested (request_move), only a VIF on the requested
        hypervisor is bound, and that ends the request."""
        with self.lock:
            where = self.inventory.get(attachment)
            if where is None or transport_node not in self.nodes:
                return False
            if where.get('requested') not in (None, transport_node):
                return False
            where.pop('requested', None)
            if (where['transport_node'], where['ofport']) == \
                    (transport_node, ofport):
                return False
            where.update(transport_node=transport_node, ofport=ofport)
            self.db.execute('UPDATE logical_ports SET transport_node=?, '
                            'ofport=? WHERE attachment=?',
                            (transport_node, ofport, attachment))
            self._commit()
            return True

    def unlocate(self, attachment, transport_node):
        """`attachment`'s VIF went away from `transport_node` (its vNIC
        unplugged, controllers.nodedb): if the VM was bound there, it is
        plugged nowhere now and its logical port is unbound (in no
        device's intent) until its VIF appears again. -> True if that
        changed anything."""
        with self.lock:
            where = self.inventory.get(attachment)
            if where is None or where['transport_node'] != transport_node:
                return False
            where.update(transport_node=None, ofport=None)
            self.db.execute('UPDATE logical_ports SET transport_node=?, '
                            'ofport=0 WHERE attachment=?',
                            (UNBOUND, attachment))
            self._commit()
            return True

    def detach(self, port_id):
        with self.lock:
            self.get_port(port_id)
            self.db.execute('DELETE FROM logical_ports WHERE id=?',
                            (port_id,))
            self._commit()

    def get_port(self, port_id):
        check_id(port_id, 'id', 'a logical port')
        row = self.db.execute('SELECT * FROM logical_ports WHERE id=?',
                              (port_id,)).fetchone()
        if row is None:
            raise ApiError(404, 'id', f'no logical port {port_id}')
        return self._port(row)

    def _port(self, row):
        out = dict(row)
        out['tags'] = json.loads(out['tags'])
        if out['transport_node'] == UNBOUND:
            out['transport_node'] = out['ofport'] = None
        out['requested_node'] = self.inventory.get(
            out['attachment'], {}).get('requested')
        return out

    def list_ports(self, ls_id=None):
        if ls_id is not None:
            self.get_ls(ls_id)
        q = 'SELECT * FROM logical_ports' + (' WHERE ls_id=?' if ls_id
                                             is not None else '')
        return [self._port(r) for r in self.db.execute(
            q + ' ORDER BY id', () if ls_id is None else (ls_id,))]

    # -- gateway connections ------------------------------------------------
    def connect_gateway(self, body):
        """Bind a logical switch to VLAN `vlan` on `port` of L2 gateway
        `gateway` (a software gateway or a hardware VTEP)."""
        with self.lock:
            _check_fields(body, ('ls_id', 'gateway', 'port', 'vlan'))
            ls_id = check_id(_require(body, 'ls_id', 'a logical switch id'),
                             'ls_id', 'a logical switch')
            gw = _require(body, 'gateway', 'an L2 gateway name')
            node = self.nodes.get(gw) if isinstance(gw, str) else None
            if node is None or node['role'] not in ('sw_gateway', 'hw_vtep'):
                raise ApiError(404, 'gateway', f'no L2 gateway {gw!r}; see '
                               'GET /api/v1/l2-gateways')
            port = _require(body, 'port', 'a port of the gateway')
            if not isinstance(port, str) or port not in node.get('ports', ()):
                raise ApiError(404, 'port', f'{gw} has no port {port!r}; '
                               f"its ports: {', '.join(node.get('ports', ()))}")
            vlan = body.get('vlan', 0)
            if not isinstance(vlan, int) or isinstance(vlan, bool) or \
                    not 0 <= vlan <= 4094:
                raise ApiError(400, 'vlan', 'a VLAN id is an integer 0..4094 '
                               '(0 = untagged)')
            self.get_ls(ls_id, 'ls_id')
            clash = self.db.execute(
                'SELECT ls_id FROM gateway_connections WHERE gateway=? AND '
                'port=? AND vlan=?', (gw, port, vlan)).fetchone()
            if clash:
                raise ApiError(409, 'vlan', f'{gw} port {port} VLAN {vlan} is '
                               f'already bound to logical switch {clash[0]}')
            cur = self.db.execute(
                'INSERT INTO gateway_connections (ls_id, gateway, port, vlan) '
                'VALUES (?, ?, ?, ?)', (ls_id, gw, port, vlan))
            self._commit()
            return self.get_connection(cur.lastrowid)

    def get_connection(self, conn_id):
        check_id(conn_id, 'id', 'a gateway connection')
        row = self.db.execute('SELECT * FROM gateway_connections WHERE id=?',
                              (conn_id,)).fetchone()
        if row is None:
            raise ApiError(404, 'id', f'no gateway connection {conn_id}')
        return dict(row)

    def disconnect_gateway(self, conn_id):
        with self.lock:
            self.get_connection(conn_id)
            self.db.execute('DELETE FROM gateway_connections WHERE id=?',
                            (conn_id,))
            self._commit()

    def list_connections(self):
        return [dict(r) for r in self.db.execute(
            'SELECT * FROM gateway_connections ORDER BY id')]

    # -- the distributed firewall (controllers.dfw validates) --------------
    def _fw_rows(self, table):
        from . import dfw
        return [dict(dfw.decode(r['body']), id=r['id']) for r in
                self.db.execute(f'SELECT * FROM {table} ORDER BY id')]

    def _fw_get(self, table, row_id, what, listing):
        from . import dfw
        check_id(row_id, 'id', what)
        r = self.db.execute(f'SELECT * FROM {table} WHERE id=?',
                            (row_id,)).fetchone()
        if r is None:
            raise ApiError(404, 'id', f'no {what} {row_id}; GET {listing} '
                           'lists them')
        return dict(dfw.decode(r['body']), id=r['id'])

    def _fw_put(self, table, row_id, row, what):
        from . import dfw
        clash = self.db.execute(f'SELECT id FROM {table} WHERE name=?',
                                (row['name'],)).fetchone()
        if clash and clash[0] != row_id:
            raise ApiError(409, 'name', f"{what} {clash[0]} is already "
                           f"named {row['name']!r}")
        if row_id is None:
            row_id = self.db.execute(
                f'INSERT INTO {table} (name, body) VALUES (?, ?)',
                (row['name'], dfw.encode(row))).lastrowid
        else:
            self.db.execute(f'UPDATE {table} SET name=?, body=? WHERE id=?',
                            (row['name'], dfw.encode(row), row_id))
        self._commit()
        return dict(row, id=row_id)

    def _vm_names(self):
        return set(self.inventory) | {p['attachment']
                                      for p in self.list_ports()}

    def list_groups(self):
        return self._fw_rows('security_groups')

    def get_group(self, group_id):
        return self._fw_get('security_groups', group_id, 'security group',
                            '/api/v1/security-groups')

    def create_group(self, body, group_id=None):
        from . import dfw
        with self.lock:
            row = dfw.check_group(body, self._vm_names(),
                                  {ls['name'] for ls in self.list_ls()})
            if group_id is not None:
                old = self.get_group(group_id)
                if old['name'] != row['name']:
                    self._group_unused(old['name'], 'name',
                                       'change them first')
            return self._fw_put('security_groups', group_id, row,
                                'security group')

    def update_group(self, group_id, body):
        return self.create_group(body, group_id)

    def _group_unused(self, name, field, fix):
        """ApiError 409 naming the rules that use group `name`, if any."""
        users = [r['name'] for r in self.list_rules() +
                 self.list_steering_rules()
                 if {'group': name} in (r['source'], r['destination'],
                                        r['applied_to'])]
        if users:
            raise ApiError(409, field, f"rules use group {name!r}: "
                           f"{', '.join(users)}; {fix}")

    def delete_group(self, group_id):
        with self.lock:
            g = self.get_group(group_id)
            self._group_unused(g['name'], 'id', 'delete or change them first')
            self.db.execute('DELETE FROM security_groups WHERE id=?',
                            (group_id,))
            self._commit()

    def list_rules(self):
        return self._fw_rows('firewall_rules')

    def get_rule(self, rule_id):
        return self._fw_get('firewall_rules', rule_id, 'firewall rule',
                            '/api/v1/firewall-rules')

    def create_rule(self, body, rule_id=None):
        from . import dfw
        with self.lock:
            if rule_id is not None:
                self.get_rule(rule_id)
            row = dfw.check_rule(body, {g['name'] for g in self.list_groups()},
                                 {ls['name'] for ls in self.list_ls()})
            _own_priority(self.list_rules(), row, rule_id, 'rule')
            return self._fw_put('firewall_rules', rule_id, row,
                                'firewall rule')

    def update_rule(self, rule_id, body):
        return self.create_rule(body, rule_id)

    def delete_rule(self, rule_id):
        with self.lock:
            self.get_rule(rule_id)
            self.db.execute('DELETE FROM firewall_rules WHERE id=?',
                            (rule_id,))
            self._commit()

    # -- service steering (controllers.steering validates) ---------------
    def list_service_vms(self):
        return self._fw_rows('service_vms')

    def get_service_vm(self, svm_id):
        return self._fw_get('service_vms', svm_id, 'service VM',
                            '/api/v1/service-vms')

    def create_service_vm(self, body, svm_id=None):
        from . import steering
        with self.lock:
            if svm_id is not None:
                self.get_service_vm(svm_id)
            taken = {s['transport_node']: s['name']
                     for s in self.list_service_vms() if s['id'] != svm_id}
            row = steering.check_service_vm(
                body, {n for n, p in self.nodes.items()
                       if p.get('role') == 'hypervisor'}, taken)
            return self._fw_put('service_vms', svm_id, row, 'service VM')

    def update_service_vm(self, svm_id, body):
        return self.create_service_vm(body, svm_id)

    def delete_service_vm(self, svm_id):
        with self.lock:
            self.get_service_vm(svm_id)
            self.db.execute('DELETE FROM service_vms WHERE id=?', (svm_id,))
            self._commit()

    def list_steering_rules(self):
        return self._fw_rows('steering_rules')

    def get_steering_rule(self, rule_id):
        return self._fw_get('steering_rules', rule_id, 'steering rule',
                            '/api/v1/steering-rules')

    def create_steering_rule(self, body, rule_id=None):
        from . import steering
        with self.lock:
            if rule_id is not None:
                self.get_steering_rule(rule_id)
            row = steering.check_rule(
                body, {g['name'] for g in self.list_groups()},
                {ls['name'] for ls in self.list_ls()})
            _own_priority(self.list_steering_rules(), row, rule_id,
                          'steering rule')
            return self._fw_put('steering_rules', rule_id, row,
                                'steering rule')

    def update_steering_rule(self, rule_id, body):
        return self.create_steering_rule(body, rule_id)

    def delete_steering_rule(self, rule_id):
        with self.lock:
            self.get_steering_rule(rule_id)
            self.db.execute('DELETE FROM steering_rules WHERE id=?',
                            (rule_id,))
            self._commit()

    MAX_BULK = 20000

    def bulk(self, create, bodies):
        """Create every item of the list `bodies` with `create` (create_ls,
        connect_gateway) in one transaction, or none: the first bad item
        fails the whole request and its field is named by position
        ('[17].vlan'). ITaaS provisions thousands of mappings this way."""
        with self.lock:
            if not isinstance(bodies, list) or not bodies:
                raise ApiError(400, 'body', 'a JSON object, or a non-empty '
                               'list of them for a bulk create')
            if len(bodies) > self.MAX_BULK:
                raise ApiError(400, 'body', f'at most {self.MAX_BULK} items '
                               f'per bulk request (got {len(bodies)}); split '
                               'it')
            self._batch, out = True, []
            try:
                for i, body in enumerate(bodies):
                    try:
                        out.append(create(body))
                    except ApiError as exc:
                        raise ApiError(exc.status, f'[{i}].{exc.field}',
                                       exc.message) from None
            except BaseException:
                self.db.rollback()
                raise
            finally:
                self._batch = False
            self._commit()
            return out

    def _commit(self):
        if getattr(self, '_batch', False):
            return                   # bulk(): one commit at the end
        self.db.commit()
        with self._changed:
            self.generation += 1
            self._changed.notify_all()

    def wait_change(self, after, timeout):
        """Block until the generation differs from `after` or `timeout` s
        passed (a long poll's wait, woken by the commit itself) -> the
        generation now."""
        with self._changed:
            self._changed.wait_for(lambda: self.generation != after,
                                   timeout)
            return self.generation

    # -- snapshot for the pure core -----------------------------------------
    def desired(self):
        """Everything reconciliation needs, as plain data."""
        with self.lock:
            return {'logical_switches': self.list_ls(),
                    'ports': [p for p in self.list_ports()
                              if p['transport_node'] is not None],
                    'gateway_connections': self.list_connections(),
                    'security_groups': self.list_groups(),
                    'firewall_rules': self.list_rules(),
                    'service_vms': self.list_service_vms(),
                    'steering_rules': self.list_steering_rules(),
                    'nodes': dict(self.nodes)}
