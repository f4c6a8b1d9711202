"""What the switch reports in its database (pure): its own rows as they
should be, from what it is, what it learned and what it sees.

-> {'ps': Physical_Switch columns, 'ports': {port: Physical_Port columns},
    'ucast_local': {(ls, mac)}, 'mcast_local': {ls},
    'tunnels': {remote ip: {'bfd_status': {...}}},
    'stats': {(port, vlan): Logical_Binding_Stats columns}}
(devices.hwvtep.vtepdb writes it.)
"""
from . import bfd as bfdmod
from .pipeline import member_of_port, pod_bindings
from .vtepdb import remote_ips

COUNTERS = ('packets_from_local', 'bytes_from_local', 'packets_to_local',
            'bytes_to_local')


def switch_rows(layout, config, local_macs, carrier, bfd, stats, full):
    """layout: the device's layout (ps, tunnel_ip, mgmt_ip, members, age);
    config: vtepdb.config_of(); local_macs: {(ls, mac)} learned;
    carrier: {port: up?}; bfd: {remote ip: Interface bfd_status (maybe
    empty)} of every service node the switch runs BFD to; stats: {(port, vlan): {counter: n}}; full: the MAC
    table is at its limit."""
    members = layout['members']
    bound = pod_bindings(members, config)
    names = [m['name'] for m in members]
    ps = {'name': layout['ps'],
          'description': 'nsx-l2gw-lab native hardware VTEP'
          + (f" (pod of {len(names)} members: {', '.join(names)})"
             if layout.get('pod') else ''),
          'tunnel_ips': [layout['tunnel_ip']],
          'management_ips': [layout['mgmt_ip']] if layout.get('mgmt_ip')
          else [],
          'switch_fault_status': ['mac_table_exhaustion'] if full else [],
          'other_config': {'mac_age_s': str(layout.get('age', 300)),
                           'members': ','.join(names)}}
    where = member_of_port(members)
    bad = {p for (p, _), ls in config['bindings'].items()
           if config['lss'].get(ls, {}).get('vni') is None}
    ports = {}
    for m in members:
        for pp in m['ports']:
            ports[pp] = {
                'description': m.get('descriptions', {}).get(pp, ''),
                'port_fault_status': ['invalid_vlan_map'] if pp in bad
                else [],
                'other_config': {'link_state': 'up' if carrier.get(pp)
                                 else 'down', 'member': where[pp]}}
    lss = {ls for ls in bound.values()}
    zero = {c: 0 for c in COUNTERS}
    return {'ps': ps, 'ports': ports,
            'ucast_local': {k for k in local_macs if k[0] in lss},
            'mcast_local': lss,
            'tunnels': {ip: {'bfd_status': bfdmod.bfd_status(bfd.get(ip),
                                                             ip in bfd)}
                        for ip in remote_ips(config)},
            'stats': {(pp, vlan): {**zero, **stats.get((pp, vlan), {})}
                      for (_m, pp, vlan) in bound}}
