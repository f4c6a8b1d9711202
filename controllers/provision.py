"""Provision a lab's logical networks through the NSX API, as a user would
(`./run.py` builds every lab this way): one bulk request for the logical
switches, one per logical switch for its VMs' ports, one for the gateway
connections (each is one transaction and one reconciliation pass; 416
single requests took a 100-transport-node lab's controller through as many
passes). `requests_for` is pure."""


def requests_for(plan):
    """[(method, path, [bodies])] in order; '{ls:NAME}' stands for the id
    the API gives logical switch NAME."""
    switches = sorted(plan['logical_switches'].items(),
                      key=lambda kv: kv[1]['vni'])
    reqs = [('POST', '/logical-switches',
             [{'name': name, 'vni': ls['vni'],
               **({'subnet': ls['subnet']} if ls.get('subnet') else {})}
              for name, ls in switches])]
    for name, _ in switches:
        vms = [{'attachment': n} for n, p in plan['nodes'].items()
               if p['role'] == 'vm' and p.get('ls') == name]
        if vms:
            reqs.append(('POST', f'/logical-switches/{{ls:{name}}}/ports',
                         vms))
    conns = gateway_connections(plan)
    if conns:
        reqs.append(('POST', '/gateway-connections', conns))
    return [r for r in reqs if r[2]]


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
    done = 0
    total = sum(len(bodies) for _, _, bodies in reqs)
    for method, path, bodies in reqs:
        for name, ls_id in ids.items():
            path = path.replace(f'{{ls:{name}}}', str(ls_id))
            bodies = [dict(b, ls_id=ls_id)
                      if b.get('ls_id') == f'{{ls:{name}}}' else b
                      for b in bodies]
        status, out = ctl.request(method, path, bodies)
        if status >= 300:
            raise RuntimeError(f'{method} {path} ({len(bodies)} items): '
                               f'{status} {out}')
        if path == '/logical-switches':
            ids.update({x['name']: x['id'] for x in out})
        done += len(bodies)
        progress(f'  provisioned {done}/{total} items ({method} {path}, '
                 f'{len(bodies)} in one request)')
    return ids
