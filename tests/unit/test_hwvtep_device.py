"""The native hardware VTEP's reaction to its database (devices/hwvtep/
device.py), with a fake database: a remote MAC the NVC writes for a MAC
this switch learned wins (the soak's fault 29: a dual-homed server's bond
failed back, and the stale local entry kept its replies on the backup
link), and only the changed remote MACs are recomputed."""
from devices.hwvtep import device, macs


class FakeDb:
    def __init__(self, config):
        self.cfg = config

    def ready(self):
        return True

    def config(self):
        return self.cfg


def config(remote):
    return {'logical_switches': {'ls1': {'vni': 5001}},
            'bindings': {('bm1', 0): 'ls1'}, 'ucast_remote': remote,
            'mcast_remote': {'ls1': ['10.0.0.9']}}


def vtep(remote, learned):
    d = object.__new__(device.Device)
    d.db = FakeDb(config(remote))
    d.config = config(remote)
    d.macs = macs.MacTable()
    for mac in learned:
        d.macs.learn('ls1', mac, 'vtep2', 'bm1', 0)
    d.dirty, d.dirty_db = set(), False
    return d


BM1, BM2 = '02:00:00:02:00:0e', '02:00:00:02:00:0f'


def test_a_remote_mac_placed_elsewhere_wins_over_the_learned_one():
    d = vtep({}, [BM1, BM2])
    d.db.cfg = config({('ls1', BM1): '198.19.64.1'})
    d.on_config(('Ucast_Macs_Remote',))
    assert d.macs.local_keys() == {('ls1', BM2)}     # BM1 forgotten here
    assert ('remote', 'ls1', BM1) in d.dirty       # its remote flows
    assert ('mac', 'ls1', BM1) in d.dirty          # its local flows go


def test_remote_macs_for_macs_not_learned_here_touch_nothing_else():
    d = vtep({}, [BM2])
    d.db.cfg = config({('ls1', BM1): '198.19.64.1'})
    d.on_config(('Ucast_Macs_Remote',))
    assert d.macs.local_keys() == {('ls1', BM2)}
    assert d.dirty == {('remote', 'ls1', BM1)}


class Msg:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_a_frame_before_its_ports_carrier_is_learned_when_carrier_returns():
    """OVS can report the first frames after carrier returns before the
    port-status saying so (the last CI failure: bm2's MAC never relearned
    after its carrier came back, the one ping having come too early)."""
    from devices.hwvtep import ofmsg, pipeline
    d = vtep({}, [])
    d.config = {'lss': {'ls1': {'vni': 5001}},
                'bindings': {('bm2', 0): 'ls1'}}
    m = Msg(name='vtep2', port_of={2: 'bm2'}, carrier={'bm2': False})
    d.held = macs.Held()
    frame = bytes.fromhex('ffffffffffff' + BM2.replace(':', '')) + b'\0' * 50
    d._packet_in(m, Msg(match={'tunnel_id': 5001,
                               'reg1': pipeline.binding_id(2, 0)},
                        data=frame))
    assert not d.macs.entries                      # not before its carrier
    up = Msg(desc=Msg(port_no=2, state=0))
    assert ofmsg.link_up(up.desc)
    d._port_status(m, up)
    assert d.macs.local_keys() == {('ls1', BM2)}
    assert ('mac', 'ls1', BM2) in d.dirty and d.dirty_db
