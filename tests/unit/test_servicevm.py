"""The service VM's firewall (devices.servicevm.policy) and its agent on
fakes: the ruleset's order (the signature before established), address
sets named and filled from the controller's groups, changes as one
transaction per change, counters read back, bad policies refused naming
the entry and field; and the lab's wiring of it (topologies.servicevm)."""
import pytest

from devices.servicevm import agent as agentmod
from devices.servicevm import policy as pol
from topologies import expand, labs, servicevm

DENY = [{'name': 'no-telnet', 'destination': 'web', 'protocol': 'tcp',
         'port': 23}]


def test_the_ruleset_in_order_with_its_sets():
    text = pol.ruleset(pol.check_policy(DENY),
                       {'web': ['10.1.0.13/32'], 'db-tier': []})
    lines = [x.strip() for x in text.splitlines()]
    order = [next(i for i, x in enumerate(lines) if key in x) for key in
             ('"ips:tcp"', '"ips:udp"', '"established"', '"invalid"',
              '"deny:no-telnet"', '"allow"')]
    assert order == sorted(order)
    assert 'set g_web {' in lines and 'elements = { 10.1.0.13 }' in lines
    assert 'set g_db_2dtier {' in lines        # '-' is not a set name's
    deny = lines[order[4]]
    assert 'ip daddr @g_web' in deny and 'tcp dport 23' in deny
    assert '@ih,0,64 0x' + pol.SIGNATURE.hex() in lines[order[0]]


@pytest.mark.parametrize('entry,field', [
    ({'name': 'x y'}, 'policy[0].name'),
    ({'name': 'x', 'protocol': 'gre'}, 'policy[0].protocol'),
    ({'name': 'x', 'protocol': 'icmp', 'port': 5}, 'policy[0].port'),
    ({'name': 'x', 'source': ''}, 'policy[0].source'),
])
def test_bad_policies_name_the_entry_and_field(entry, field):
    with pytest.raises(ValueError) as e:
        pol.check_policy([entry])
    assert str(e.value).startswith(field)


def test_set_updates_touch_only_what_changed():
    old = {'web': ['10.1.0.13/32'], 'db': ['10.1.0.15/32']}
    new = {'web': ['10.1.0.13/32', '10.1.0.17/32'], 'db': ['10.1.0.15/32'],
           'app': []}
    cmds = pol.set_updates(old, new)
    assert cmds == [
        'add set inet svc g_app { type ipv4_addr; flags interval; }',
        'flush set inet svc g_app',
        'flush set inet svc g_web',
        'add element inet svc g_web { 10.1.0.13, 10.1.0.17 }']
    assert pol.set_updates(new, new) == []


def test_counters_and_set_elements_from_nft_json():
    listing = {'nftables': [
        {'metainfo': {}},
        {'set': {'name': 'g_web', 'elem': ['10.1.0.13', {'prefix': {
            'addr': '10.9.0.0', 'len': 16}}]}},
        {'rule': {'comment': 'ips:tcp', 'expr': [
            {'match': {}}, {'counter': {'packets': 3, 'bytes': 180}},
            {'drop': None}]}},
        {'rule': {'expr': [{'counter': {'packets': 9, 'bytes': 1}}]}}]}
    assert pol.counters(listing) == {'ips:tcp': 3}
    assert pol.set_elements(listing, 'web') == ['10.1.0.13/32',
                                                '10.9.0.0/16']
    assert pol.set_elements(listing, 'other') is None


class FakeNft:
    def __init__(self):
        self.cmds = []

    def cmd(self, text):
        self.cmds.append(text)
        return 0, '', ''


class FakeApi:
    def __init__(self, answers):
        self.answers, self.asked = list(answers), []

    def request(self, method, path, body=None):
        self.asked.append(path)
        return 200, self.answers.pop(0)

    def close(self):
        pass


def test_the_agent_loads_then_follows_the_groups():
    nft, lines = FakeNft(), []
    a = agentmod.Agent('http://x/api/v1', None, DENY, lines.append, nft)
    a.api = FakeApi([{'generation': 4, 'groups': {'web': ['10.1.0.13/32']}},
                     {'generation': 5, 'groups': {'web': ['10.1.0.13/32']}},
                     {'generation': 7, 'groups': {'web': []}}])
    a.load()
    assert 'set g_web {' in nft.cmds[0] and 'delete table inet svc' in \
        nft.cmds[0]
    assert a.poll(0) is True and a.generation == 4
    assert a.poll(25) is False          # another change, not to the groups
    assert a.poll(25) is True
    assert a.api.asked[1].endswith('after=4&wait=25')
    assert nft.cmds[-1] == 'flush set inet svc g_web'
    assert any('address sets updated: web' in x for x in lines)


def test_the_wiring_of_a_service_vm():
    plan = expand.expand(labs.resolve('clos-small'))
    root, inside, hv_side, vsctl, mgmt = servicevm.plumbing(plan, 'hv3')
    assert 'link set svc-in up' in hv_side
    assert any('svc-in netns nsxl-hv3' in x and 'peer name in netns '
               'nsxl-svc-hv3' in x for x in root)
    assert 'link set in master br0' in inside
    assert f'ofport_request={servicevm.IN_PORT}' in vsctl
    ip = servicevm.mgmt_ip(plan, 'hv3')
    assert ip.startswith('198.18.255.') and ip not in {
        n.get('mgmt_ip') for n in plan['nodes'].values()}
    assert len(mgmt) <= 15


def test_a_service_vm_address_stays_below_a_clusters_nodes():
    """A cluster's nodes take the top of the management subnet: the
    service VMs count down from below them, whatever the hypervisor."""
    spec = dict(labs.resolve('clos-small'), controllers=3)
    plan = expand.expand(spec)
    ctls = {c['mgmt_ip'].split('/')[0] for c in plan['controllers'].values()}
    nodes = {n['mgmt_ip'].split('/')[0] for n in plan['nodes'].values()
             if 'mgmt_ip' in n}
    got = {hv: servicevm.mgmt_ip(plan, hv).split('/')[0]
           for hv in ('hv1', 'hv2', 'hv3')}
    assert len(set(got.values())) == 3
    assert not set(got.values()) & (ctls | nodes), (got, ctls)
