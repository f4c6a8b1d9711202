"""The use-case scenarios' pure parts: reading ping, and the cases'
hosts exist in both small labs."""
from scenarios import usecases
from topologies import expand, labs

PING = """PING 10.1.0.16 (10.1.0.16) 56(84) bytes of data.
64 bytes from 10.1.0.16: icmp_seq=1 ttl=64 time=0.512 ms
64 bytes from 10.1.0.16: icmp_seq=2 ttl=64 time=1.25 ms
"""


def test_rtts_and_ttls_from_ping():
    assert usecases.rtts(PING) == ([0.512, 1.25], [64])
    assert usecases.rtts('') == ([], [])
    assert usecases.latency([]) is None
    assert usecases.latency([1.0, 3.0])['p50'] == 1.0


def test_every_case_names_hosts_of_both_small_labs():
    for topo in ('clos', 'vcf'):
        nodes = expand.expand(labs.resolve(topo))['nodes']
        for case in usecases.CASES.values():
            for a, b in case['pairs']:
                assert a in nodes and (b in nodes or b == usecases.OUTSIDE)
            if case.get('appliance'):
                assert nodes[case['appliance']]['role'] == 'bare_metal'
