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
            self.ports[name] = {i['ofport']: i for i in node['intfs']}
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

    def _lookup(self, member, in_port, dst):
        for f in self.tables[member]:
            m = f['match']
            if 'in_port' in m and int(m['in_port']) != in_port:
                continue
            if 'dl_dst' in m and not _mac_match(m['dl_dst'], dst):
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

    def send(self, node, intf, dst, hops=12):
        """A frame for `dst` leaves `node` on `intf`. Returns one list of
        (receiving node, its interface) per forwarding alternative."""
        if (node, intf) in self.dead:
            return [[]]
        i = next(x for x in self.plan['nodes'][node]['intfs']
                 if x['name'] == intf)
        peer, pintf = i['peer'], i['peer_intf']
        if peer not in self.tables:
            return [[(peer, pintf)]]
        if hops == 0:
            raise AssertionError(f'forwarding loop at {peer}')
        in_port = next(p for p, x in self.ports[peer].items()
                       if x['name'] == pintf)
        results = []
        for outs in self._outputs(peer, self._lookup(peer, in_port, dst)):
            branch = [[]]
            for p in outs:
                if p == in_port:
                    continue
                sub = self.send(peer, self.ports[peer][p]['name'], dst,
                                hops - 1)
                branch = [b + s for b, s in itertools.product(branch, sub)]
            results += branch
        return results
