"""A fake OpenFlow 1.3 switch for the controller's intents: tables, goto,
metadata, tunnel_id, fast-failover groups. It tells where a frame goes."""


def _matches(match, pkt):
    for k, v in match.items():
        if k == 'eth_dst' and isinstance(v, tuple):
            val, mask = (int(x.replace(':', ''), 16) for x in v)
            if int(pkt['eth_dst'].replace(':', ''), 16) & mask != val & mask:
                return False
        elif k == 'vlan_vid':
            if pkt.get('vlan', 0) != v:
                return False
        elif pkt.get(k) != v:
            return False
    return True


def forward(flows, groups, pkt, live=None):
    """pkt: {in_port, eth_dst, tunnel_id?, vlan?}. Returns sorted
    [(port, vni or 'vlanN')] of every copy that leaves the switch. `live`: ports that are up (all
    if None)."""
    pkt = dict(pkt)
    gmap = {g['group_id']: g for g in groups}
    table, out = 0, []
    while table is not None:
        cands = [f for f in flows if f['table'] == table and
                 _matches(f['match'], pkt)]
        if not cands:
            break
        f = max(cands, key=lambda f: f['priority'])
        for action in f['actions']:
            if action[0] == 'set_tunnel':
                pkt['tunnel_id'] = action[1]
            elif action[0] == 'output':
                if action[1] != pkt['in_port']:
                    out.append((action[1], pkt.get('tunnel_id')))
            elif action[0] == 'output_vlan':      # leaves tagged (or not)
                if action[1] != pkt['in_port']:
                    out.append((action[1], f'vlan{action[2]}'))
            elif action[0] == 'pop_vlan':
                pkt['vlan'] = 0
            elif action[0] == 'group':
                g = gmap[action[1]]
                alive = [b for b in g['buckets'] if live is None or
                         b['watch_port'] in live]
                for b in alive[:1]:
                    out += [(a[1], pkt.get('tunnel_id'))
                            for a in b['actions'] if a[0] == 'output']
        if f['metadata'] is not None:
            pkt['metadata'] = f['metadata']
        table = f['goto']
    return sorted(out)
