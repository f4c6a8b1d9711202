"""The switch's learned-MAC table (pure: no I/O, time is a parameter).

A hardware VTEP learns a source MAC on the first frame that enters one of
its bindings (physical port + VLAN -> logical switch), keeps it while frames
keep coming (aging is OVS's idle timeout on the learned flow, reported back
as an event), moves it when it shows up on another binding or another member
of the pod, and forgets every MAC of a port that loses carrier (or of a
member whose data plane restarted), as a switch does.

Entries: {(ls, mac): Entry(member, port, vlan)}. `ls` is the logical
switch's name in the hardware_vtep database.
"""
from collections import namedtuple

Entry = namedtuple('Entry', 'member port vlan')

NEW, MOVED, SAME, FULL, INVALID = 'new', 'moved', 'same', 'full', 'invalid'
DEFAULT_LIMIT = 16384
HOLD_S = 1.0            # a frame held for its port's carrier, at most
HOLD_MAX = 64           # MACs held per port, at most


def is_unicast(mac):
    """A MAC a switch may learn: not multicast/broadcast, not all zeros."""
    first = int(mac.split(':')[0], 16)
    return not first & 1 and mac != '00:00:00:00:00:00'


class MacTable:
    def __init__(self, limit=DEFAULT_LIMIT):
        self.limit = limit
        self.entries = {}

    def learn(self, ls, mac, member, port, vlan):
        """A frame from `mac` entered binding (member, port, vlan) of `ls`.
        -> NEW, MOVED, SAME, FULL (the table is at its limit: not learned;
        the switch reports mac_table_exhaustion) or INVALID (a multicast or
        zero source is never learned)."""
        mac = mac.lower()
        if not is_unicast(mac):
            return INVALID
        key, where = (ls, mac), Entry(member, port, vlan)
        old = self.entries.get(key)
        if old == where:
            return SAME
        if old is None and len(self.entries) >= self.limit:
            return FULL
        self.entries[key] = where
        return NEW if old is None else MOVED

    def full(self):
        return len(self.entries) >= self.limit

    def aged(self, ls, mac, member, port, vlan):
        """The learned flow of (ls, mac) on that binding idled out. Only
        forgets the MAC if it is still there (it may have moved since)."""
        key = (ls, mac.lower())
        if self.entries.get(key) == Entry(member, port, vlan):
            del self.entries[key]
            return True
        return False

    def flush(self, member, port=None):
        """Forget what was learned on `port` of `member` (carrier lost), or
        on every port of `member` (its data plane restarted or powered
        off). -> the removed keys, sorted."""
        gone = sorted(k for k, e in self.entries.items()
                      if e.member == member and (port is None or
                                                 e.port == port))
        for k in gone:
            del self.entries[k]
        return gone

    def forget_ls(self, lss):
        """Drop MACs of logical switches that are not bound any more."""
        gone = sorted(k for k in self.entries if k[0] not in lss)
        for k in gone:
            del self.entries[k]
        return gone

    def unbound(self, bindings):
        """Drop MACs learned on bindings that no longer exist (the NVC
        removed the binding): bindings = {(member, port, vlan): ls}."""
        gone = sorted(k for k, e in self.entries.items()
                      if bindings.get((e.member, e.port, e.vlan)) != k[0])
        for k in gone:
            del self.entries[k]
        return gone

    def placed_elsewhere(self, keys):
        """The NVC placed these (ls, mac) on another VTEP (new or changed
        Ucast_Macs_Remote): the host moved there (e.g. a dual-homed
        server's bond failed back to its other switch), so an entry learned
        here is forgotten, as a switch forgets a MAC that moved; it is
        learned again from the next frame that enters here. -> the removed
        keys, sorted."""
        gone = sorted(k for k in keys if k in self.entries)
        for k in gone:
            del self.entries[k]
        return gone

    def local_keys(self):
        """{(ls, mac)} the switch reports in Ucast_Macs_Local."""
        return set(self.entries)


class Held:
    """Frames that entered a port the switch still believes down. OVS
    reports a port's carrier (port-status) from its main loop, apart from
    the packets that port receives, so the first frames after carrier
    returns can reach the device before the port-status that says so (and
    a frame that entered just before carrier was lost can come after it).
    A switch learns from the first frame: such a frame's source is held,
    and learned if its port's carrier comes back within HOLD_S; what is
    older, or what came on a port that stays down, is forgotten."""

    def __init__(self, within=HOLD_S, limit=HOLD_MAX):
        self.within, self.limit = within, limit
        self.frames = {}        # (member, port) -> {(ls, mac): (vlan, t)}

    def hold(self, member, port, ls, mac, vlan, now):
        """-> True if held (a port holds at most `limit` MACs)."""
        held = self.frames.setdefault((member, port), {})
        key = (ls, mac.lower())
        if key not in held and len(held) >= self.limit:
            return False
        held[key] = (vlan, now)
        return True

    def release(self, member, port, now):
        """The port's carrier came back: -> [(ls, mac, vlan)] of frames held
        within the last `within` seconds, in arrival order; the port holds
        nothing after."""
        held = self.frames.pop((member, port), {})
        fresh = sorted((t, ls, mac, vlan) for (ls, mac), (vlan, t)
                       in held.items() if now - t <= self.within)
        return [(ls, mac, vlan) for _t, ls, mac, vlan in fresh]

    def drop(self, member):
        """The member's data plane went away: nothing it held counts."""
        for k in [k for k in self.frames if k[0] == member]:
            del self.frames[k]
