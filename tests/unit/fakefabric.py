"""A fake OpenFlow fabric for unit tests (Faucet-style): applies the flows
and groups that topologies.vcf computes to frames and follows them across
the plan's links, so tests assert forwarding ("this frame reaches hv2 once,
over either spine"), not flow text."""
import itertools


def _parse_kv(text):
    out = {}
    for part in text.split(','):
        if '=' in part:
            k, v = part.split('=', 1)
            out[k] = v
    return out


def parse_flow(line):
    match, actions = line.split(',actions=')
    fields = _parse_kv(match)
    return {'priority': int(fields.pop('priority', 0)), 'match': fields,
            'actions': actions.split(',')}


def parse_group(line):
    head, *buckets = line.split(',bucket=')
    g = _parse_kv(head)
    out = []
    for b in buckets:
        watch, action = b.split(',', 1)
        out.append((int(watch.split(':')[1]), action))
    return int(g['group_id']), g['type'], out


def _mac_match(value, mac):
    if '/' in value:
        val, mask = value.split('/')
        v = int(val.replace(':', ''), 16)
        m = int(mask.replace(':', ''), 16)
        return int(mac.replace(':', ''), 16) & m == v & m
    return value == mac


class FakeFabric:
    def __init__(self, plan, member_flows):
        self.plan = plan
        self.tables, self.groups, self.ports, self.links = {}, {}, {}, {}
        for name, node in plan['nodes'].items():
            self.ports[name] = {i['ofport']: i for i in node['intfs']
                                if not i.get('pod_port')}
            inst = node.get('pod_vtep')
            if inst:    # a member of the native pod VTEP: its two ports
                self.ports[name][inst['phy_ofport']] = {
                    'name': inst['phy_port'], 'peer': f"{inst['vtep']}@{name}",
                    'peer_intf': inst['uplink']}
                self.ports[name][inst['internal_ofport']] = {
                    'name': inst['internal_port'],
                    'peer': f"{inst['vtep']}#{name}", 'peer_intf': 'pod'}
            if name in member_flows:
                groups, flows = member_flows[name]
                self.tables[name] = sorted(
                    (parse_flow(f) for f in flows),
                    key=lambda f: -f['priority'])
                self.groups[name] = {gid: (t, b) for gid, t, b in
                                     map(parse_group, groups)}
        self.dead = set()      # (node, intf name) whose link is down

    def fail_node(self, name):
        for i in self.plan['nodes'][name]['intfs']:
            self.dead.add((name, i['name']))
            self.dead.add((i['peer'], i['peer_intf']))

    def _live(self, member, ofport):
        return (member, self.ports[member][ofport]['name']) not in self.dead

    def _lookup(self, member, in_port, dst, tagged):
        for f in self.tables[member]:
            m = f['match']
            if 'in_port' in m and int(m['in_port']) != in_port:
                continue
            if 'dl_dst' in m and not _mac_match(m['dl_dst'], dst):
                continue
            if 'vlan_tci' in m and not tagged:   # only 0x1000/0x1000 used
                continue
            return f['actions']
        return ['drop']

    def _outputs(self, member, actions):
        """-> list of alternatives, each a list of output ofports."""
        alts = [[]]
        for a in actions:
            if a.startswith('output:'):
                alts = [x + [int(a.split(':')[1])] for x in alts]
            elif a.startswith('group:'):
                gtype, buckets = self.groups[member][int(a.split(':')[1])]
                live = [int(b[1].split(':')[1]) for b in buckets
                        if self._live(member, b[0])]
                if gtype == 'fast_failover':
                    choice = [live[:1]]
                else:               # select: every live bucket is possible
                    choice = [[p] for p in live] or [[]]
                alts = [x + c for x, c in itertools.product(alts, choice)]
        return alts

    def send(self, node, intf, dst, hops=12, tagged=False):
        """A frame for `dst` (VLAN-tagged or not) leaves `node` on `intf`.
        Returns one list of (receiving node, its interface) per forwarding
        alternative. A member of a native pod VTEP sends from its instance
        with node = '<vtep>@<member>' (intf: its uplink) or
        '<vtep>#<member>' (intf 'pod': the pod's internal frames)."""
        if (node, intf) in self.dead:
            return [[]]
        if '@' in node or '#' in node:
            member = node.replace('#', '@').split('@')[1]
            peer = member
            in_port = next(p for p, x in self.ports[member].items()
                           if x['peer'] == node)
            return self._forward(peer, in_port, dst, hops, tagged)
        i = next(x for x in self.plan['nodes'][node]['intfs']
                 if x['name'] == intf)
        peer, pintf = i['peer'], i['peer_intf']
        if peer not in self.tables:
            return [[(peer, pintf)]]
        in_port = next(p for p, x in self.ports[peer].items()
                       if x['name'] == pintf)
        return self._forward(peer, in_port, dst, hops, tagged)

    def _forward(self, member, in_port, dst, hops, tagged):
        if hops == 0:
            raise AssertionError(f'forwarding loop at {member}')
        results = []
        for outs in self._outputs(member, self._lookup(member, in_port, dst,
                                                       tagged)):
            branch = [[]]
            for p in outs:
                if p == in_port:
                    continue
                port = self.ports[member][p]
                if port['peer'] not in self.plan['nodes']:    # an instance
                    sub = [[(port['peer'], port['peer_intf'])]]
                else:
                    sub = self.send(member, port['name'], dst, hops - 1,
                                    tagged)
                branch = [b + s for b, s in itertools.product(branch, sub)]
            results += branch
        return results
