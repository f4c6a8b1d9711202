"""Provision a lab's logical networks through the NSX API, as a user would
(`./run.py` builds every lab this way). `requests_for` is pure."""


def requests_for(plan):
    """[(method, path, body)] in order; '{ls:NAME}' stands for the id the
    API gives logical switch NAME."""
    reqs = []
    for name, ls in sorted(plan['logical_switches'].items(),
                           key=lambda kv: kv[1]['vni']):
        reqs.append(('POST', '/logical-switches', {'name': name,
                                                   'vni': ls['vni']}))
    for name, p in plan['nodes'].items():
        if p['role'] == 'vm' and p.get('ls'):
            reqs.append(('POST', f"/logical-switches/{{ls:{p['ls']}}}/ports",
                         {'attachment': name}))
    reqs += [('POST', '/gateway-connections', body)
             for body in gateway_connections(plan)]
    return reqs


def gateway_connections(plan):
    """Each software gateway on a physical segment bridges the VLANs of the
    segment's hosts to those hosts' logical switches, and each hardware VTEP
    port facing a server binds it ('ls_id' holds '{ls:NAME}' until the
    switch exists)."""
    nodes, out = plan['nodes'], []
    for seg, p in nodes.items():
        if p['role'] != 'l2_segment':
            continue
        vlans = sorted({(nodes[i['peer']]['ls'], i.get('vlan', 0))
                        for i in p['intfs']
                        if nodes[i['peer']].get('ls')})
        gateways = [i for i in p['intfs']
                    if nodes[i['peer']]['role'] == 'sw_gateway']
        for ls, vlan in vlans:
            for g in gateways:
                out.append({'ls_id': f'{{ls:{ls}}}', 'gateway': g['peer'],
                            'port': g['peer_intf'], 'vlan': vlan})
    # hardware VTEPs: each port facing a server binds the server's VLAN (0:
    # untagged) to its logical switch
    for vtep, p in nodes.items():
        if p['role'] != 'hw_vtep':
            continue
        for i in p['intfs']:
            host = nodes.get(i.get('server') or i['peer'], {})
            if i['kind'] == 'physical' and host.get('ls'):
                out.append({'ls_id': f"{{ls:{host['ls']}}}", 'gateway': vtep,
                            'port': i['name'], 'vlan': host.get('vlan', 0)})
    return out


def provision(ctl, plan, progress=lambda m: None):
    ids = {}
    reqs = requests_for(plan)
    for i, (method, path, body) in enumerate(reqs, 1):
        for name, ls_id in ids.items():
            path = path.replace(f'{{ls:{name}}}', str(ls_id))
            if body.get('ls_id') == f'{{ls:{name}}}':
                body = dict(body, ls_id=ls_id)
        status, out = ctl.request(method, path, body)
        if status >= 300:
            raise RuntimeError(f'{method} {path} {body}: {status} {out}')
        if path == '/logical-switches':
            ids[out['name']] = out['id']
        if i % 100 == 0 or i == len(reqs):
            progress(f'  provisioned {i}/{len(reqs)} API requests')
    return ids
