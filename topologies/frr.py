"""FRR configuration for an L3 IP Clos router (pure: plan node -> text).

The usual data-centre design (RFC 7938): eBGP on every spine-leaf link, all
spines share one ASN, each leaf has its own; `maximum-paths` gives ECMP over
every spine. Only underlay prefixes are redistributed (never management).

Zebra installs routes with their next hops inline, not as kernel nexthop
objects (`no zebra nexthop kernel enable`): with kernel nexthop groups,
FRR 8.4 (Debian's) lost routes for good after a quick interface flap
("Nexthop id does not exist ... Route install failed", never retried),
found by the fault soak and measured in docs/security.md.
"""


def frr_conf(node, plan, underlay):
    peers = {n: plan['nodes'][n] for n in plan['nodes']}
    lines = ['frr defaults datacenter', f"hostname {node['name']}",
             'no zebra nexthop kernel enable',
             'log stdout informational', 'no ipv6 forwarding', '!',
             f'ip prefix-list UNDERLAY seq 5 permit {underlay} le 32',
             'route-map CONNECTED permit 10',
             ' match ip address prefix-list UNDERLAY', '!',
             f"router bgp {node['asn']}",
             f" bgp router-id {node['router_id']}",
             ' no bgp ebgp-requires-policy',
             ' no bgp network import-check',
             ' bgp bestpath as-path multipath-relax',
             ' timers bgp 1 3']
    nbrs = []
    for intf in node['intfs']:
        if intf['kind'] != 'fabric':
            continue
        peer = peers[intf['peer']]
        pintf = next(i for i in peer['intfs'] if i['name'] ==
                     intf['peer_intf'])
        ip = pintf['ip'].split('/')[0]
        nbrs.append(ip)
        lines += [f" neighbor {ip} remote-as {peer['asn']}",
                  f" neighbor {ip} timers connect 1",
                  f" neighbor {ip} advertisement-interval 0"]
    lines += [' address-family ipv4 unicast',
              '  redistribute connected route-map CONNECTED',
              '  maximum-paths 64', ' exit-address-family', '!']
    return '\n'.join(lines) + '\n'
