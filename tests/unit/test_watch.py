"""The scenarios' watches read what devices push: the flow monitor's
events, stamped by ovs-ofctl as it received them."""
import calendar

from scenarios import watch


def test_flow_events_carry_the_monitors_own_stamps():
    lines = ['NXST_FLOW_MONITOR reply (xid=0x6):\n',
             '2026-11-30 03:24:58.646: NXST_FLOW_MONITOR reply (xid=0x0):\n',
             ' event=ADDED table=1 cookie=0x5 tun_id=0x1389,metadata=0/0xff,'
             'dl_dst=02:47:00:00:00:01 actions=output:1005\n',
             '2026-11-30 03:24:58.857: NXST_FLOW_MONITOR reply (xid=0x0):\n',
             ' event=DELETED reason=delete table=1 cookie=0x5 x\n']
    events = list(watch.flow_events(lines))
    t0 = calendar.timegm((2026, 11, 30, 3, 24, 58))
    assert [round(t - t0, 3) for t, _ in events] == [0.646, 0.857]
    assert 'event=ADDED' in events[0][1] and 'DELETED' in events[1][1]


class W:
    def __init__(self, first, changes, t0=100.0):
        self.first, self.changes, self.t0 = first, changes, t0

    def value(self):
        return self.changes[-1][1] if self.changes else self.first


def test_settled_when_every_watch_last_reached_its_value():
    a = W('old', [(101.0, None), (101.5, 'new')])
    b = W('there', [])                    # there from the start
    assert watch.settled_at({a: 'new', b: 'there'}) == 101.5
    c = W('old', [(102.0, 'new'), (103.0, 'old')])  # went back: not settled
    assert watch.settled_at({a: 'new', c: 'new'}) is None
