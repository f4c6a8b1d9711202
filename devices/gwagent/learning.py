"""What a software gateway learns on its cable, pure: the segment bridge's
flows, the source of a frame, the report the controller reads.

The segment bridge br-<seg> (port 1 the cable, port 2 the patch to br-int):

  table 0  SEGMENT  from the cable -> LEARN (active or standby: a standby
                    learns too, from what the segment floods, so it knows
                    servers when it takes over); from br-int -> the cable
                    (active only)
  table 1  LEARN    a known (VLAN, source MAC) -> FORWARD; anything else
                    is also sent to the agent (packet-in), which learns it
                    and adds the flow; the flow idles out after AGE_S
                    (aging; its removal is reported to the agent)
  table 2  FORWARD  -> br-int (active only; a standby drops)

The agent keeps its learned table (devices.hwvtep.macs.MacTable, keyed by
VLAN) across state changes, flushes it when the cable loses carrier or
ovs-vswitchd restarts, as a switch does, and publishes it while active on
the cable's Interface row in its own OVSDB:

  external_ids:l2gw-macs = "VLAN/MAC VLAN/MAC ..."   (VLAN 0: untagged)

The controller (controllers.nodedb.gateway_macs_of) maps each (cable, VLAN)
to a logical switch through the gateway connections and installs the MAC
on the hypervisors like a MAC a hardware VTEP learned: unicast towards a
physical server goes to the active gateway, not through a service node.
VM MACs seen on the cable (the segment floods what the active gateway
forwards into it) are learned but never reported.
"""
SEGMENT, LEARN, FORWARD = 0, 1, 2
CABLE, PATCH = 1, 2
AGE_S = 300                      # a learned MAC's idle time, as switches
REPORT_KEY = 'l2gw-macs'
REPORT_LIMIT = 1024              # MACs published per cable


def base_flows():
    """Flows that do not depend on the state: learning."""
    return [{'table': LEARN, 'priority': 0, 'match': {},
             'actions': [('controller',)], 'goto': FORWARD}]


def state_flows(active):
    """Tables SEGMENT and FORWARD for a state (the agent replaces only
    those two tables when the state changes; LEARN stays)."""
    flows = [{'table': SEGMENT, 'priority': 10, 'match': {'in_port': CABLE},
              'actions': [], 'goto': LEARN}]
    if active:
        flows += [{'table': SEGMENT, 'priority': 10,
                   'match': {'in_port': PATCH},
                   'actions': [('output', CABLE)], 'goto': None},
                  {'table': FORWARD, 'priority': 10, 'match': {},
                   'actions': [('output', PATCH)], 'goto': None}]
    return flows


def learned_flow(vlan, mac, age=AGE_S):
    """The LEARN flow of one learned MAC: it idles out after `age` seconds
    and the bridge tells the agent (flow removed)."""
    return {'table': LEARN, 'priority': 100,
            'match': {'in_port': CABLE, 'vlan_vid': vlan, 'eth_src': mac},
            'actions': [], 'goto': FORWARD, 'idle': age, 'notify': True}


CFM = b'\x89\x02'                # CCMs: the gateways' own cables


def frame_source(data):
    """An Ethernet frame -> (VLAN, source MAC) (VLAN 0: untagged), or None
    for a runt or a CFM frame (another gateway's cable, not a server: OVS
    hands CCMs to the flow table while a cable has no CFM ID)."""
    if len(data) < 14:
        return None
    mac = ':'.join('%02x' % b for b in data[6:12])
    if data[12:14] == b'\x81\x00':
        if len(data) < 18 or data[16:18] == CFM:
            return None
        return int.from_bytes(data[14:16], 'big') & 0xfff, mac
    return None if data[12:14] == CFM else (0, mac)


def report(entries, vm_macs=(), limit=REPORT_LIMIT):
    """The published value for learned {(vlan, mac)} minus the VM MACs
    br-int says belong to the overlay ([(mac, vlan)]): "VLAN/MAC ..."
    sorted, at most `limit` entries."""
    vms = {(vlan, mac) for mac, vlan in vm_macs}
    keep = sorted(k for k in entries if k not in vms)[:limit]
    return ' '.join(f'{vlan}/{mac}' for vlan, mac in keep)
