"""BFD to the service nodes, for a switch of one or more members (pure).

vtep(5): the NVC enables BFD on the switch's Tunnel rows (bfd_params); the
switch runs the sessions and picks a service node "known to be healthy and
reachable". A pod has one tunnel IP, so the service nodes see one session
per pod: one member runs them all (OVS BFD on its tunnel ports), and the
others follow what it sees.
"""
from collections import namedtuple

# member: who runs the sessions; trusted: believe what it sees; since: when
# it stopped qualifying (None while it does)
Choice = namedtuple('Choice', 'member trusted since')
MOVE_DELAY_S = 2.0


def choose(current, eligible, running, since, now, delay=MOVE_DELAY_S):
    """Which member runs the pod's BFD sessions.

    current: the member that runs them (None at first); eligible: members,
    in order, that are connected and have a live uplink; running: those
    that already have BFD tunnels (a restarted device finds them); since:
    when `current` stopped qualifying. The current member stays while it
    qualifies (a move restarts every session). One that stops qualifying is
    no longer believed at once (the service nodes it cannot reach are not
    dead) but replaced only `delay` s later: reconfiguring a member's OVS
    in the middle of a failover would hold up its packets. If none
    qualifies the sessions stay where they are, not believed."""
    if current in eligible:
        return Choice(current, True, None)
    if current is not None:
        since = now if since is None else since
        if now - since < delay:
            return Choice(current, False, since)
    pick = [m for m in eligible if m in running] or list(eligible)
    if not pick:
        return Choice(current, False, since)
    return Choice(pick[0], True, None)


def liveness(live, seen_up, status, trusted):
    """(live, seen_up) after the running member reports `status` {service
    node ip: Interface bfd_status}: a session that has been up since the
    member took over and now does not forward means that service node is
    dead; one that has not come up yet says nothing (BFD takes a few
    seconds to start). Nothing changes while the member is not believed."""
    live, seen_up = dict(live), set(seen_up)
    if not trusted:
        return live, seen_up
    for ip, st in status.items():
        if st.get('forwarding') == 'true':
            seen_up.add(ip)
            live[ip] = True
        elif ip in seen_up:
            live[ip] = False
    return live, seen_up


def wanted(config, remote_ips):
    """{service node ip: OVS bfd:* options} the NVC enabled BFD for."""
    return {ip: bfd_options(p, config['bfd_remote'].get(ip))
            for ip, p in config['bfd'].items()
            if p.get('enable') == 'true' and ip in remote_ips}


# Tunnel.bfd_params keys that OVS's BFD takes as they are (forwarding_if_rx
# too); vtep(5) defaults apply where the NVC set nothing
BFD_KEYS = ('enable', 'min_rx', 'min_tx', 'decay_min_rx', 'forwarding_if_rx',
            'cpath_down', 'check_tnl_key')


def bfd_options(params, remote_config=None):
    """Interface bfd:* for a Tunnel's bfd_params (+ bfd_config_remote)."""
    out = {k: str(v) for k, v in params.items() if k in BFD_KEYS}
    remote = remote_config or {}
    if remote.get('bfd_dst_ip'):
        out['bfd_dst_ip'] = remote['bfd_dst_ip']
    if remote.get('bfd_dst_mac'):
        out['bfd_local_dst_mac'] = remote['bfd_dst_mac']
    return out


def bfd_status(status, enabled):
    """Tunnel.bfd_status (vtep(5) keys) from an Interface's bfd_status:
    empty where the switch runs no BFD session; `enabled` as soon as one is
    configured, even before OVS reports on it (a session moving to another
    member of a pod is still the switch's)."""
    if not enabled:
        return {}
    out = {k: status[k] for k in ('state', 'forwarding', 'diagnostic',
                                  'remote_state', 'remote_diagnostic')
           if k in (status or {})}
    out['enabled'] = 'true'
    return out
