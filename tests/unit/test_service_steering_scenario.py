"""The service-steering scenario's judgements (scenarios.service_steering)
on made-up captures, logs and receive times."""
from scenarios import service_steering as ss

A, B = '10.1.0.11', '10.1.0.13'


def frame(proto, sport=None, dport=None, src=A, dst=B, icmp=None):
    f = {'ip_src': src, 'ip_dst': dst, 'proto': proto}
    if sport is not None:
        f.update(sport=sport, dport=dport)
    if icmp is not None:
        f['icmp'] = icmp
    return f


def test_crossing_counts_each_kind_between_the_two_hosts():
    frames = [frame(6, 40000, 80), frame(6, 80, 40000, B, A),
              frame(17, 5000, ss.STEERED), frame(17, 5000, ss.PLAIN),
              frame(1, icmp=8), frame(6, 40000, 80, src='10.9.9.9')]
    assert ss.crossing(frames, A, B) == {'tcp': 2, 'udp steered': 1,
                                         'udp plain': 1, 'icmp': 1}


def test_judge_crossing_wants_steered_in_and_the_rest_out():
    good = {'tcp': 9, 'udp steered': 100, 'udp plain': 0, 'icmp': 0}
    assert ss.judge_crossing({'svc-in': good, 'svc-out': good}) == []
    bad = dict(good, tcp=0, icmp=2)
    got = ss.judge_crossing({'svc-in': bad})
    assert len(got) == 2 and 'tcp did not cross' in got[0] and \
        'icmp crossed' in got[1]


def test_updates_after_reads_the_agents_epochs():
    log = ('100.000 ruleset loaded: 1 policy entries, 0 address sets\n'
           '101.500 address sets updated: web (generation 9, 1.2 ms)\n'
           'garbage address sets updated\n'
           '103.250 address sets updated: web (generation 11, 0.9 ms)\n')
    assert ss.updates_after(log, 101.0) == [101.5, 103.25]
    assert ss.updates_after(log, 104) == []


def test_failure_figures_per_policy():
    # 1,000/s from 0 to 4 s; down at 1.0, up at 2.5
    every = [i / 1000 for i in range(4000)]
    # the silences come a little after the commands' times
    opened = [t for t in every if not 1.01 < t < 1.09 and
              not 2.5 < t < 2.52]
    f = ss.failure_figures(opened, 1.0, 2.5, 'fail-open')
    assert f == {'outage_down_ms': 80.0, 'outage_up_ms': 20.0}
    assert ss.failure_figures(every[:2700], 1.0, 2.5, 'fail-open')[
        'outage_up_ms'] is None          # the stream ended too soon
    closed = [t for t in every if not 1.0 < t < 2.53]
    f = ss.failure_figures(closed, 1.0, 2.5, 'fail-closed')
    assert f == {'passed_while_down': 0, 'last_after_down_ms': 0.0,
                 'resumed_after_up_ms': 30.0}
    leaky = closed + [1.5]
    assert ss.failure_figures(leaky, 1.0, 2.5, 'fail-closed')[
        'passed_while_down'] == 1
    assert ss.failure_figures(every[:900], 1.0, 2.5, 'fail-closed')[
        'resumed_after_up_ms'] is None
