"""Names for what OpenFlow numbers (pure, plan in): a br-int's port
numbers become what is cabled there (a VM, the uplink, the tunnel to hv2),
VNIs and MACs the logical switch and host they belong to. The lab CLI's
`flows` (demos.readable) and the controller's node tables
(controllers.tables) both name flows this way."""
import re

from controllers import intent


def port_names(plan, node):
    """{ofport: name} on `node`'s br-int: its cables (named after the peer)
    and its tunnels ('tunnel->hv2')."""
    nodes = plan['nodes']
    out = {i['ofport']: i['peer'] for i in nodes[node]['intfs']
           if 'ofport' in i}
    if 'tunnel_ip' in nodes[node]:
        for peer, p in nodes.items():
            if peer != node and 'tunnel_ip' in p:
                out[intent.tunnel_port(nodes, peer)] = f'tunnel->{peer}'
    return out


def names(plan):
    """{MAC: host, VNI (as text): logical switch}."""
    out = {p['mac']: n for n, p in plan['nodes'].items() if 'mac' in p}
    for ls, p in plan['logical_switches'].items():
        out[str(p['vni'])] = ls
        out[hex(p['vni'])] = ls
    return out


def annotate(plan, node, line, br_int=True, known=None):
    """One line of OVS output with ports (br-int's only), MACs and VNIs
    named (`known`: names(plan) or more)."""
    ports = port_names(plan, node) if br_int else {}
    known = names(plan) if known is None else known

    def port(m):
        n = int(m.group(2))
        return f"{m.group(1)}{n}({ports[n]})" if n in ports else m.group(0)

    def mac(m):
        who = known.get(m.group(0))
        return f'{m.group(0)}({who})' if who else m.group(0)

    def vni(m):
        who = known.get(m.group(2))
        return f'{m.group(0)}({who})' if who else m.group(0)
    line = re.sub(r'\b(in_port=|output:|watch_port:)(\d+)', port, line)
    line = re.sub(r'([0-9a-f]{2}:){5}[0-9a-f]{2}', mac, line)
    return re.sub(r'\b(tun_id|set_field|tunnel_id)=?:?(0x[0-9a-f]+|\d+)',
                  vni, line)
