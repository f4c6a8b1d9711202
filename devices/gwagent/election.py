"""The software gateway election, pure: who of the gateways on a physical
segment bridges it to the overlay (whitepaper, "Software Layer 2 Gateway /
Redundancy": the lowest CFM ID that is alive; failback is preemptive).

Two kinds of evidence, as edge clusters use them:
  CFM on the cable      every gateway announces its ID (OVS CCMs) and lists
                        the IDs it hears; an ID is lost 3.5 intervals after
                        its last CCM. The backstop: it needs nothing but
                        the segment, so it also covers a gateway that died
                        whole.
  notices between the   small UDP messages over the management network and
  gateways' agents      the transport network (either path will do):
      yield    "I (ID m) stopped forwarding": sent by a gateway whose
               cable lost carrier or whose data plane died, the moment it
               knows. Others stop counting m until m claims again or CFM
               loses m (then a CCM heard afresh counts again).
      claim    "I (ID m) am ready to forward and want to": sent while a
               gateway is eligible, outranks every ID it hears, and is not
               active yet.
      release  answer to a claim from a lower ID: "I (ID n) do not
               forward any more" (sent once its flows are gone).
      deny     answer to a claim from a higher ID: "I (ID n) outrank you".
      active   a heartbeat from the active gateway, every HEARTBEAT_MS.
               An ID counts as alive while its CCMs or its heartbeats
               arrive: a busy box delays OVS's CCMs (seen here: 17 to 75 ms
               late at a 10 ms interval, in ovs-vswitchd.log), CFM then
               loses a gateway that still forwards, and the standby took
               over beside it. A gateway is taken over from when both
               fall silent (power off), or at once when it yields.
    A claimer that gets `release` from every configured peer becomes active
    at once (break before make: nobody forwards in between); otherwise it
    waits for CFM's listening time, as before (a peer that is gone answers
    nothing).

At most one gateway forwards at any instant: a gateway forwards only while
it outranks every ID it counts; a yielding one stopped before it said so;
a releasing one stopped before it answered.
"""
import json

ACTIVE, STANDBY = 'active', 'standby'
YIELD, CLAIM, RELEASE, DENY = 'yield', 'claim', 'release', 'deny'
HEARTBEAT = 'active'
KINDS = (YIELD, CLAIM, RELEASE, DENY, HEARTBEAT)
HEARTBEAT_MS = 10                # the active gateway's heartbeat period
PEER_PORT = 7789                 # UDP, the agents' notices
HOLD_INTERVALS = 4               # listen this long before taking over
CLAIM_S = 1.0                    # a claim counts this long without CFM


def hold_s(interval_ms):
    return HOLD_INTERVALS * interval_ms / 1000.0 - 1e-9


def heartbeat_timeout_s(interval_ms):
    """How long an active gateway's heartbeats may stop before it is
    taken for gone: CFM's 3.5 intervals, and 3.5 heartbeats at least."""
    return 3.5 * max(interval_ms, HEARTBEAT_MS) / 1000.0


class Election:
    """Feed it what the gateway knows; it says active or standby.

    update(now, own, heard, interval_ms, eligible): own is this gateway's
    CFM ID (None: none assigned, or withheld); heard, the IDs CFM hears;
    eligible, the cable has carrier and the data plane is programmed.
    Notices go in through on_notice(); claim_round() tells the agent when
    to (re)send a claim and to whom it still waits for."""

    def __init__(self, peers=0):
        self.peers = peers               # configured peer gateways
        self.state = STANDBY
        self.listening_since = None      # when we became eligible
        self.outranked = False
        self.own, self.eligible = None, False
        self.yielded = set()             # IDs that said they stopped
        self.claims = {}                 # ID -> until when it counts as
        #                                  heard (a claim, or a deny)
        self.released = set()            # peer IDs that released to us
        self.beats = {}                  # ID -> until when its heartbeat
        #                                  keeps it alive

    # -- inputs -----------------------------------------------------------
    def on_notice(self, now, kind, mpid, interval_ms):
        """A peer's notice. -> the answer to send back (RELEASE/DENY) for a
        claim, None otherwise. An answer RELEASE is only true once this
        gateway's flows are gone: the agent sends it after applying."""
        if kind == YIELD:
            self.yielded.add(mpid)
            self.claims.pop(mpid, None)
            self.beats.pop(mpid, None)
            return None
        if kind == HEARTBEAT:
            if mpid not in self.yielded:
                self.beats[mpid] = now + heartbeat_timeout_s(interval_ms)
            return None
        if kind == CLAIM:
            self.yielded.discard(mpid)
            if self.own is not None and self.eligible and self.own < mpid:
                return DENY
            self._count(now, mpid, interval_ms)
            return RELEASE
        if kind == RELEASE:
            self.released.add(mpid)
        elif kind == DENY:
            self._count(now, mpid, interval_ms)
        return None

    def _count(self, now, mpid, interval_ms):
        """A peer that claimed or denied counts as heard until CFM hears
        it: its CCMs start when it restores its ID, and OVS publishes the
        IDs it hears in OVSDB some time later (up to ~100 ms seen under
        load at a 10 ms interval). If the claim counted only for CFM's
        detection time, the releasing gateway took over again in between
        and both forwarded at once. So it counts for CLAIM_S at least."""
        self.claims[mpid] = now + max(CLAIM_S, 2 * (
            hold_s(interval_ms) + 3.5 * interval_ms / 1000.0))

    def counted(self, now, heard):
        """The IDs that count: CFM's and those whose heartbeats arrive,
        minus those that yielded (until both lose them), plus fresh
        claims."""
        self.beats = {m: t for m, t in self.beats.items() if t > now}
        heard = set(heard) | set(self.beats)
        self.yielded &= heard            # CFM lost it: a new CCM counts
        self.claims = {m: t for m, t in self.claims.items()
                       if t > now and m not in heard}
        return (heard - self.yielded) | set(self.claims)

    def update(self, now, own, heard, interval_ms, eligible=True):
        self.own, self.eligible = own, eligible
        counted = self.counted(now, heard)
        if not own or not eligible:
            self.restart()
            return self.state
        if self.listening_since is None:
            self.listening_since = now
            self.released = set()
        self.outranked = any(m < own for m in counted)
        if self.outranked:
            self.state = STANDBY
            self.released = set()
        elif self.state != ACTIVE and (
                now - self.listening_since >= hold_s(interval_ms) or
                (self.peers and len(self.released) >= self.peers)):
            self.state = ACTIVE
        return self.state

    def restart(self):
        """Not eligible (no ID, no carrier, data plane down or not yet
        programmed): stand by, and listen again before taking over."""
        self.state, self.listening_since = STANDBY, None
        self.released = set()

    def wants_to_claim(self):
        """Eligible, outranking every ID it counts, not active yet: send
        claims (again) to the peers that have not released."""
        return self.eligible and self.own is not None and \
            self.listening_since is not None and not self.outranked and \
            self.state != ACTIVE

    def wake_in(self, now, interval_ms):
        """Seconds until a decision may change without new input."""
        waits = []
        if self.state == STANDBY and self.listening_since is not None \
                and not self.outranked:
            waits.append(self.listening_since + hold_s(interval_ms) - now)
        waits += [t - now for t in self.claims.values()]
        waits += [t - now for t in self.beats.values()]
        return max(0.0, min(waits)) if waits else None


def notice(kind, mpid, seg, round_=0):
    """A notice on the wire (JSON, one datagram)."""
    return json.dumps({'v': 1, 'kind': kind, 'id': mpid, 'seg': seg,
                       'round': round_}).encode()


def parse_notice(data, seg):
    """A datagram -> (kind, ID, round) for our segment, or None."""
    try:
        m = json.loads(data)
        if m.get('v') == 1 and m.get('seg') == seg and \
                m.get('kind') in KINDS and isinstance(m.get('id'), int):
            return m['kind'], m['id'], int(m.get('round', 0))
    except (ValueError, TypeError, AttributeError):
        pass
    return None


def restore_id(stashed, current):
    """The CFM ID to put back on the cable once the data plane is ready:
    the one withheld at the crash, unless the controller set one since."""
    return None if current or not stashed else stashed


RARP = 0x8035
BROADCAST = b'\xff' * 6


def rarp_frame(mac, vlan=0):
    """A RARP request from `mac` to everyone (what a virtual switch sends
    for a VM after a move, so the physical switches learn where it is),
    802.1Q-tagged when the segment carries the logical switch on a VLAN."""
    src = bytes.fromhex(mac.replace(':', ''))
    tag = b'\x81\x00' + vlan.to_bytes(2, 'big') if vlan else b''
    # htype 1, ptype IPv4, hlen 6, plen 4, op 3 (request reverse)
    body = b'\x00\x01\x08\x00\x06\x04\x00\x03' + src + b'\0' * 4 + src + \
        b'\0' * 4
    return BROADCAST + src + tag + RARP.to_bytes(2, 'big') + body + \
        b'\0' * 18


def announce_list(flows, int_port):
    """From br-int's flows (dicts: table, priority, match), the VM MACs to
    announce towards the segment: [(mac, vlan)] for every remote MAC of a
    logical switch this gateway port carries (table 0: in_port=int_port
    [, vlan_vid] -> VNI; table 1: tunnel_id=VNI, eth_dst=MAC, from local
    -> a tunnel). Also says whether the controller has programmed the port
    at all (-> (list, programmed))."""
    vlans = {}
    for f in flows:
        m = f['match']
        if f['table'] == 0 and m.get('in_port') == int_port and \
                f.get('vni') is not None:
            vlans.setdefault(f['vni'], set()).add(m.get('vlan_vid') or 0)
    out = set()
    for f in flows:
        m = f['match']
        if f['table'] == 1 and f['priority'] == 100 and \
                m.get('metadata') == 0 and m.get('tunnel_id') in vlans and \
                m.get('eth_dst'):
            for vlan in vlans[m['tunnel_id']]:
                out.add((m['eth_dst'], vlan))
    programmed = any(f['table'] == 0 and f['match'].get('in_port') ==
                     int_port for f in flows)
    return sorted(out), programmed
