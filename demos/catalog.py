"""The demos, as data: which lab, which lanes, which acts (what the lab does
while every hop is captured) and, per act, the steps a trainer walks
through, each quoting the whitepaper. `DEMOS[name]` = (lab spec for a
fabric, plan -> demo). Pure."""
from scenarios import arp_flow, hw_arp_flow
from topologies import labs

from .steps import P, Step

VNI1, VLAN = 5001, 100


def Act(title, do, pair, steps, macs=None):
    """do: what the lab does, e.g. ('arp', 'vm1', 's', hosts vm1 reaches
    first); pair: the two hosts
    whose frames are shown; macs: {MAC: box} for MACs that moved."""
    return {'title': title, 'do': do, 'pair': pair, 'steps': steps,
            'macs': macs or {}}


def round_trip(src, src_vtep, dst_vtep, dst, vni=VNI1):
    """A ping's six hops (four on one VTEP): request in, across (one
    tunnelled copy), out; the reply back the same way."""
    req, rep = 'ICMP echo request', 'ICMP echo reply'
    if src_vtep == dst_vtep:
        return [P(src, src_vtep, req), P(src_vtep, dst, req),
                P(dst, dst_vtep, rep), P(dst_vtep, src, rep)]
    return [P(src, src_vtep, req), P(src_vtep, dst_vtep, req, n=1, vni=vni),
            P(dst_vtep, dst, req), P(dst, dst_vtep, rep),
            P(dst_vtep, src_vtep, rep, n=1, vni=vni), P(src_vtep, src, rep)]


def arp_flow_demo(plan):
    return {
        'title': 'ARP through a software L2 gateway (figures 9-11)',
        'lanes': ['vm1', 'hv1', 'vm2', 'sn1', 'sn2', 'hv2', 'vm3', 'vm4',
                  'hv3', 'vm5', 'gw1', 's'],
        'acts': [Act('VM1 sends one ARP request for server S',
                     ('arp', 'vm1', 's', ('s', 'vm3')), ('vm1', 's'), [
            Step('HV1 floods the request locally and to one service node',
                 'Because VM2 is in the same broadcast domain as VM1, the '
                 'virtual switch on Hypervisor 1 is directly forwarding the '
                 'request to VM2. [...] the virtual switch on Hypervisor 1 is '
                 'also forwarding the ARP request to a service node via its '
                 'VXLAN Tunnel End Point (VTEP). [...] this packet is '
                 'encapsulated using VXLAN.', figure='figure 10',
                 expect=[P('vm1', 'hv1', 'ARP request'),
                         P('hv1', 'vm2', 'ARP request'),
                         P('hv1', 'SN', 'ARP request', n=1, vni=VNI1)]),
            Step('The service node relays it to HV2 and the gateway only',
                 'Hypervisor 3 does not host any VM on logical switch 1, so '
                 'the service node will only relay the ARP request to '
                 'Hypervisor 2 and the L2 gateway service.',
                 figure='figure 10',
                 expect=[P('SN', 'hv2', 'ARP request', n=1, vni=VNI1),
                         P('SN', 'gw1', 'ARP request', n=1, vni=VNI1)],
                 never=[(P('*', 'hv3', '*'), 'Hypervisor 3 hosts no VM on '
                         'logical switch 1')]),
            Step('HV2 delivers it to VM3 only',
                 'the virtual switch on Hypervisor 2 only forwards the '
                 'packet to VM3, as VM4 is on a different broadcast domain. '
                 'NSX dynamically limits the scope of flooded traffic.',
                 figure='figure 10',
                 expect=[P('hv2', 'vm3', 'ARP request')],
                 never=[(P('*', 'vm4', '*'), 'VM4 is on logical switch 2'),
                        (P('*', 'vm5', '*'), 'VM5 is on logical switch 2, '
                         'on Hypervisor 3')]),
            Step('The gateway floods it toward S on VLAN 100',
                 'The L2 gateway receives the VXLAN encapsulated packet and '
                 'floods it toward server S, based on the logical switch to '
                 'port/VLAN mapping configured by OVSDb.',
                 figure='figure 10',
                 expect=[P('gw1', 's', 'ARP request', vlan=VLAN)]),
            Step("S's unicast reply is tunnelled by the gateway straight to "
                 'HV1', 'Server S receives the broadcast ARP request and '
                 'sends a unicast reply to VM1. [...] the L2 gateway can '
                 'determine the target VTEP1 to which the packet is directly '
                 'tunneled.', figure='figure 11',
                 expect=[P('s', 'gw1', 'ARP reply'),
                         P('gw1', 'hv1', 'ARP reply', n=1, vni=VNI1)],
                 never=[(P('*', 'SN', 'ARP reply'), 'the gateway knows '
                         "VM1's MAC -> HV1 from the controller: no flooding")],
                 evidence=[('flows', 'gw1', 'vm1')]),
            Step('HV1 delivers the reply to VM1 only',
                 'The virtual switch on Hypervisor 1 eventually delivers '
                 'the decapsulated unicast ARP reply to VM1 only.',
                 figure='figure 11',
                 expect=[P('hv1', 'vm1', 'ARP reply', n=1)],
                 never=[(P('*', 'vm2', 'ARP reply'), 'the reply is unicast '
                         'to MAC1')]),
        ])]}


def hw_arp_flow_demo(plan):
    return {
        'title': 'ARP and unicast through a hardware L2 gateway '
                 '(figures 14-16)',
        'lanes': ['vm1', 'hv1', 'vm2', 'sn1', 'sn2', 'hv2', 'vm3', 'vtep1',
                  'bm5'],
        'acts': [Act('IP1 (vm1) sends one ARP request for IP5 (bm5)',
                     # IP5 has never spoken: the VTEP has not learned MAC5
                     ('arp', 'vm1', 'bm5', ('vm3',)), ('vm1', 'bm5'), [
            Step('1-2. HV1 encapsulates the request to one service node',
                 '1. VM IP1 wants to reach IP5 but does not have its MAC '
                 'address and sends out an ARP request. 2. VTEP on '
                 'Hypervisor 1 [...] encapsulates the ARP request (for IP5) '
                 'in VXLAN and sends it to one of the NSX service nodes',
                 figure='figure 14',
                 expect=[P('vm1', 'hv1', 'ARP request'),
                         P('hv1', 'vm2', 'ARP request'),
                         P('hv1', 'SN', 'ARP request', n=1, vni=VNI1)]),
            Step('3. The service node replicates it to HV2 and the hardware '
                 'VTEP', '3. Service node replicates the ARP to other '
                 'hypervisors and hardware VTEPs on Juniper L2 NSX gateway '
                 'for the particular logical switch (same VNI) using VXLAN '
                 'encapsulation.', figure='figure 14',
                 expect=[P('SN', 'hv2', 'ARP request', n=1, vni=VNI1),
                         P('SN', 'vtep1', 'ARP request', n=1, vni=VNI1),
                         P('hv2', 'vm3', 'ARP request')]),
            Step('4. The hardware VTEP decapsulates it toward IP5',
                 '4. Hardware VTEP on Juniper L2 NSX gateway decapsulates '
                 'the VXLAN and forwards the ARP requests to connected '
                 'interfaces/VMs (IP5) for the same logical switch (VNI).',
                 figure='figure 14',
                 expect=[P('vtep1', 'bm5', 'ARP request')]),
            Step('5-6. IP5 replies; the VTEP tunnels it straight to HV1 and '
                 'learns MAC5', '5. [...] the ARP response from IP5 is sent '
                 'out to Mac1. 6. VTEP on Juniper L2 NSX gateway [...] '
                 'performs a lookup on Mac1 to identify remote VTEP. It '
                 'encapsulates the ARP response in VXLAN and sends it across '
                 'to Hypervisor 1/VTEP. Also, hardware VTEP [...] learns the '
                 'source MAC address for IP5 and updates the NSX controller',
                 figure='figure 15',
                 expect=[P('bm5', 'vtep1', 'ARP reply'),
                         P('vtep1', 'hv1', 'ARP reply', n=1, vni=VNI1),
                         P('hv1', 'vm1', 'ARP reply', n=1)],
                 never=[(P('*', 'SN', 'ARP reply'), "the VTEP finds MAC1 in "
                         'Ucast_Macs_Remote: no flooding')],
                 evidence=[('vtep-local', 'vtep1', 'bm5')]),
            Step('7. The controller installs MAC5 -> hardware VTEP on the '
                 'hypervisors', '7. NSX controller floods the mapping '
                 'information (mac5 -> IP5) to other VTEPs ensuring that all '
                 'relevant VTEPs have consistent mappings.',
                 figure='figure 15',
                 evidence=[('flows', 'hv1', 'bm5'), ('flows', 'hv2', 'bm5')]),
        ]), Act('IP1 pings IP5 (MAC5 now known)', ('ping', 'vm1', 'bm5'),
                ('vm1', 'bm5'), [
            Step('8-9. HV1 tunnels the unicast straight to the hardware VTEP',
                 '8. Unicast data traffic from VM IP1/MAC1 is now sent across '
                 'to IP5/MAC5 [...] 9. VTEP/Hypervisor 1 encapsulates the '
                 'traffic using VXLAN and sends it directly to hardware '
                 'VTEP/L2 NSX gateway.', figure='figure 16',
                 expect=[P('vm1', 'hv1', 'ICMP echo request'),
                         P('hv1', 'vtep1', 'ICMP echo request', n=1,
                           vni=VNI1)],
                 never=[(P('*', 'SN', '*'), 'MAC5 is known: no service node '
                         'carries unicast'),
                        (P('*', 'hv2', '*'), 'unicast goes to MAC5 only')]),
            Step('10-11. The VTEP decapsulates it; IP5 receives it',
                 '10. Hardware VTEP/L2 NSX gateway decapsulates the VXLAN '
                 'packets and sends them across to IP5. 11. IP5 receives the '
                 'unicast packets and processes them.', figure='figure 16',
                 expect=[P('vtep1', 'bm5', 'ICMP echo request'),
                         P('bm5', 'vtep1', 'ICMP echo reply'),
                         P('vtep1', 'hv1', 'ICMP echo reply', vni=VNI1),
                         P('hv1', 'vm1', 'ICMP echo reply')]),
        ])]}


def unicast_demo(plan):
    return {
        'title': 'Known unicast: VM to VM on one hypervisor, across '
                 'hypervisors, and on another logical switch',
        'lanes': ['vm1', 'vm2', 'hv1', 'sn1', 'sn2', 'hv2', 'vm3', 'vm4',
                  'hv3', 'vm5', 'gw1'],
        'acts': [
            Act('VM1 pings VM3 (logical switch 1, another hypervisor)',
                ('ping', 'vm1', 'vm3'), ('vm1', 'vm3'), [
                    Step('HV1 tunnels it straight to HV2, VNI 5001',
                         'Unicast data traffic [...] VTEP/Hypervisor 1 '
                         'encapsulates the traffic using VXLAN and sends it '
                         'directly to [the remote VTEP].',
                         figure='figure 16',
                         expect=round_trip('vm1', 'hv1', 'hv2', 'vm3'),
                         never=[(P('*', 'SN', '*'), 'both MACs are known: '
                                 'only broadcast and unknown unicast go to a '
                                 'service node'),
                                (P('*', 'gw1', '*'), 'unicast to a VM MAC is '
                                 'not flooded to the gateway'),
                                (P('*', 'hv3', '*'), 'HV3 hosts no VM on '
                                 'logical switch 1')])]),
            Act('VM1 pings VM2 (same hypervisor)', ('ping', 'vm1', 'vm2'),
                ('vm1', 'vm2'), [
                    Step('HV1 switches it locally: nothing is tunnelled',
                         'Because VM2 is in the same broadcast domain as VM1, '
                         'the virtual switch on Hypervisor 1 is directly '
                         'forwarding [to] VM2.', figure='figure 10',
                         expect=round_trip('vm1', 'hv1', 'hv1', 'vm2'),
                         never=[(P('hv1', '*', '*', vni=VNI1), 'local '
                                 'delivery needs no tunnel'),
                                (P('*', 'hv2', '*'), 'local delivery'),
                                (P('*', 'SN', '*'), 'local delivery')])]),
            Act('VM4 pings VM5 (logical switch 2)', ('ping', 'vm4', 'vm5'),
                ('vm4', 'vm5'), [
                    Step('HV2 tunnels it to HV3 with VNI 5002',
                         'Another logical switch (logical switch 2) [...] '
                         'NSX dynamically limits the scope of flooded '
                         'traffic.', figure='figure 9',
                         expect=round_trip('vm4', 'hv2', 'hv3', 'vm5', 5002),
                         never=[(P('*', 'hv1', '*'), 'HV1 hosts no VM on '
                                 'logical switch 2'),
                                (P('*', 'gw1', '*'), 'logical switch 2 is '
                                 'not bridged')])]),
        ]}


CFM_QUOTE = ('If an L2 gateway hears from another L2 gateway on the same '
             'segment with an ID lower than its own, it becomes inactive, '
             'breaking any loop. [...] If the active gateway becomes '
             'inactive, the standby can start forwarding frames.')


def _via_gateway(gw, other, why_other, fig='figure 8'):
    return [Step("srv1's MAC is known to HV1 (the active gateway learned "
                 'it on the segment and reported it): HV1 sends the request '
                 'to both gateways of the segment, not through a service '
                 'node',
                 'The active gateway reports the physical MACs it learns; '
                 'the controller installs them on the hypervisors, towards '
                 'every gateway of that segment (the standby drops them), so '
                 'a takeover re-points nothing.', figure='traffic flow '
                 'example',
                 expect=[P('vm1', 'hv1', 'ICMP echo request'),
                         P('hv1', gw, 'ICMP echo request', n=1, vni=VNI1),
                         P('hv1', other, 'ICMP echo request', n=1,
                           vni=VNI1)],
                 never=[(P('hv1', 'SN', 'ICMP echo request'),
                         "srv1's MAC is known: nothing is flooded")]),
            Step(f'Only {gw} forwards it to srv1 (VLAN 100); srv1\'s reply '
                 f'is tunnelled by {gw} straight to HV1', CFM_QUOTE,
                 figure=fig,
                 expect=[P(gw, 'srv1', 'ICMP echo request', vlan=VLAN),
                         P('srv1', gw, 'ICMP echo reply'),
                         P(gw, 'hv1', 'ICMP echo reply', n=1, vni=VNI1),
                         P('hv1', 'vm1', 'ICMP echo reply')],
                 never=[(P(other, 'srv1', '*'), why_other),
                        (P(other, 'hv1', '*'), why_other)],
                 evidence=[('gateways',)])]


def gateway_failover_demo(plan):
    return {
        'title': 'Software gateway redundancy: CFM election, failover and '
                 'failback (figure 8)',
        'lanes': ['vm1', 'hv1', 'sn1', 'sn2', 'gw1', 'gw2', 'srv1'],
        'ready': ['gw1-active'],
        'acts': [
            Act('gw1 (lower CFM ID) is active: VM1 pings srv1',
                ('ping', 'vm1', 'srv1'), ('vm1', 'srv1'),
                _via_gateway('gw1', 'gw2', 'gw2 hears the lower CFM ID of '
                             'gw1: standby')),
            Act("gw1's ovs-vswitchd is killed (crash)", ('crash', 'gw1'),
                ('vm1', 'srv1'), [
                    Step('gw2 stops hearing gw1 and takes over',
                         CFM_QUOTE, figure='figure 8',
                         evidence=[('takeover', 'gw2')])]),
            Act('VM1 pings srv1 again', ('ping', 'vm1', 'srv1'),
                ('vm1', 'srv1'),
                _via_gateway('gw2', 'gw1', 'gw1 has crashed')),
            Act('gw1 restarts: it takes back the segment (lower ID)',
                ('restore', 'gw1'), ('vm1', 'srv1'), [
                    Step('gw1 announces its ID once programmed; gw2 yields',
                         CFM_QUOTE, figure='figure 8',
                         evidence=[('takeover', 'gw1')])]),
            Act('VM1 pings srv1 once more', ('ping', 'vm1', 'srv1'),
                ('vm1', 'srv1'),
                _via_gateway('gw1', 'gw2', 'gw2 is standby again')),
        ]}


P2V_QUOTE = ('Extending a logical switch to a physical L2 network allows '
             'virtualizing servers with minimal impact on their '
             'configuration. As a result, a newly virtualized server can '
             'maintain connectivity with its peers whether they are virtual '
             'or physical')


def p2v_demo(plan):
    from scenarios import p2v_migration
    vtep, _ = p2v_migration.server_port(plan)
    mac = plan['nodes']['bm2']['mac']
    return {
        'title': 'P2V migration: server bm2 becomes VM vm7, same MAC and IP',
        'lanes': ['vm1', 'hv1', 'sn1', 'sn2', vtep, 'bm2', 'hv3', 'vm7'],
        # the converted machine is booted with the server's MAC and IP
        # before the demo, on no logical switch yet
        'ready': ['vm7-identity'],
        'acts': [
            Act(f'Before: VM1 pings bm2 (physical, behind {vtep})',
                ('ping', 'vm1', 'bm2'), ('vm1', 'bm2'), [
                    Step(f'HV1 tunnels to the hardware VTEP {vtep}',
                         P2V_QUOTE, figure='use case: P2V migration',
                         expect=round_trip('vm1', 'hv1', vtep, 'bm2'),
                         never=[(P('*', 'hv3', '*'), 'the VM does not exist '
                                 'on the network yet')])]),
            Act('Cut-over: bm2 powered off; through the API vm7 gets its MAC '
                'and IP, the VTEP binding is deleted; vm7 announces itself',
                ('migrate', 'bm2', 'vm7'), ('bm2', 'bm2'), [
                    Step('The converted VM announces the old identity; a '
                         'service node floods it to every member of logical '
                         'switch 1',
                         P2V_QUOTE, figure='use case: P2V migration',
                         expect=[P('vm7', 'hv3', 'ARP request'),
                                 P('hv3', 'SN', 'ARP request', n=1,
                                   vni=VNI1),
                                 P('SN', '*', 'ARP request', vni=VNI1),
                                 P('hv1', 'vm1', 'ARP request')],
                         evidence=[('flows', 'hv1', 'bm2'),
                                   ('vtep-remote', vtep, 'bm2')])],
                macs={mac: 'vm7'}),
            Act('After: VM1 pings the same IP', ('ping', 'vm1', 'bm2'),
                ('vm1', 'bm2'), [
                    Step('HV1 now tunnels to HV3, where the VM runs',
                         P2V_QUOTE, figure='use case: P2V migration',
                         expect=round_trip('vm1', 'hv1', 'hv3', 'vm7'),
                         never=[(P('*', vtep, '*'), 'the physical binding '
                                 'is gone'),
                                (P('*', 'bm2', '*'), 'the server is off')])],
                macs={mac: 'vm7'}),
        ]}


DFW_QUOTE = ('The NSX Distributed Firewall (DFW) on all ESXi hosts provides '
             'a set of kernel-based L2 through L4 stateful firewall features '
             'inside the ESXi hypervisor to deliver segmentation within each '
             'virtual network.')
DFW_WHERE = 'section "VMware NSX Integration with Juniper vSRX Firewall"'
STEER_QUOTE = ("VMware's DFW implements a stateful traffic steering mechanism "
               'that identifies what traffic should be sent to the vSRX VM. '
               'Protected VMs and the security service vSRX VM run on the '
               'same physical ESXi host.')


def dfw_demo(plan):
    """The dfw scenario's policy (scenarios/dfw.py: web {ports tagged
    tier=web: vm3's}, app {vm1},
    app-ping icmp app -> web, a default deny on ls1), three pings: one
    allowed, one from a physical server dropped where it arrives (a VM
    sender's own port would drop it first: ls1-deny covers every port of
    ls1), one dropped where it leaves; then a service VM on hv3 and a
    steering rule (icmp to web, applied to web), and the allowed ping
    again, through it. What must not happen is judged on the pings: the
    firewall filters IP, not ARP, and a host's kernel confirms a neighbour
    it used (a unicast ARP probe ~5 s later) whenever that falls."""
    req, rep = 'ICMP echo request', 'ICMP echo reply'
    return {
        'title': 'The distributed firewall: allowed, dropped where it '
                 'arrives, dropped where it leaves, steered',
        'ready': ['dfw-policy'],
        'lanes': ['vm1', 'hv1', 'bm1', 'vtep1', 'hv3', 'vm3'],
        'acts': [
            Act('VM1 pings VM3: rule app-ping allows it',
                ('probe', 'vm1', 'vm3'), ('vm1', 'vm3'), [
                    Step("HV3 lets it in at VM3's port, and the reply out as "
                         'part of the same connection', DFW_QUOTE,
                         figure=DFW_WHERE,
                         expect=round_trip('vm1', 'hv1', 'hv3', 'vm3'),
                         evidence=[('firewall', 'hv3', 'vm3', 'app-ping',
                                    'in')])]),
            Act('BM1 (a physical server) pings VM3: no rule allows it, '
                'ls1-deny drops it', ('probe', 'bm1', 'vm3'), ('bm1', 'vm3'), [
                    Step("VTEP1 tunnels it; HV3 drops it at VM3's port (the "
                         'server has no firewall port of its own)', DFW_QUOTE,
                         figure=DFW_WHERE,
                         expect=[P('bm1', 'vtep1', req),
                                 P('vtep1', 'hv3', req, vni=VNI1)],
                         never=[(P('hv3', 'vm3', req), "rule ls1-deny drops "
                                 "it at VM3's port (ingress)"),
                                (P('vm3', '*', rep), 'VM3 never got it: '
                                 'no reply')],
                         evidence=[('firewall', 'hv3', 'vm3', 'ls1-deny',
                                    'in')])]),
            Act('VM3 pings VM1: the reverse of an allowed connection is a '
                'new one, dropped', ('probe', 'vm3', 'vm1'), ('vm3', 'vm1'), [
                    Step("HV3 drops it as it leaves VM3: nothing is tunnelled",
                         DFW_QUOTE, figure=DFW_WHERE, expect=[P('vm3', 'hv3', req)],
                         never=[(P('hv3', '*', req, vni=VNI1), "rule "
                                 "ls1-deny drops it at VM3's port (egress)"),
                                (P('*', 'vm1', req), 'it never left HV3')],
                         evidence=[('firewall', 'hv3', 'vm3', 'ls1-deny',
                                    'out')])]),
            Act("VM1 pings VM3 again, now steered through HV3's service VM "
                '(the vSRX role)', ('steer', 'vm1', 'vm3', 'hv3'),
                ('vm1', 'vm3'), [
                    Step("HV3 sends the request through its service VM "
                         "(nftables) before VM3's port, and the reply on its "
                         'way out; the firewall still allows it (app-ping)',
                         STEER_QUOTE, figure=DFW_WHERE,
                         expect=round_trip('vm1', 'hv1', 'hv3', 'vm3'),
                         evidence=[('steered', 'hv3'),
                                   ('firewall', 'hv3', 'vm3', 'app-ping',
                                    'in')])]),
        ]}


DEMOS = {
    'arp-flow': (arp_flow.spec, arp_flow_demo),
    'hw-arp-flow': (hw_arp_flow.spec, hw_arp_flow_demo),
    'unicast': (arp_flow.spec, unicast_demo),
    'gateway-failover': (labs.resolve, gateway_failover_demo),
    'p2v': (labs.resolve, p2v_demo),
    'dfw': (labs.resolve, dfw_demo),
}


def summary(name):
    """One line for `./run.py list`: the demo's title (needs no lab)."""
    return SUMMARIES[name]


SUMMARIES = {
    'arp-flow': 'figures 9-11: VM1 ARPs for server S behind a software '
                'gateway, every hop captured',
    'hw-arp-flow': 'figures 14-16: ARP, MAC learning and unicast through a '
                   'hardware VTEP',
    'unicast': 'known unicast: local, across hypervisors, on another VNI',
    'gateway-failover': 'figure 8: CFM election, gw1 crash, gw2 takes over, '
                        'failback',
    'p2v': 'P2V: a server becomes a VM with its MAC and IP; traffic follows',
    'dfw': 'distributed firewall: a ping allowed, one dropped where it '
           'arrives, one where it leaves, one steered through a service VM, '
           'with the rules\' and the service VM\'s counters',
}
