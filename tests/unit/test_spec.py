"""Spec validation: every problem reported at once, each naming its path
and the fix; builders produce valid specs."""
import copy

import pytest

from topologies import builders, labs, spec as specmod


def problems(spec):
    return specmod.validate(spec)


def small():
    return copy.deepcopy(builders.clos())


def test_shipped_labs_are_valid():
    for name in labs.shipped():
        assert labs.resolve(name)['nodes'], name


def test_vcf_pod_with_31_leaves_is_refused_with_the_fix():
    with pytest.raises(specmod.SpecError) as err:
        builders.vcf(spines=2, leaves=31)
    assert ('vcf.leaves: a Virtual Chassis Fabric pod has at most 30 leaves '
            '(found 31)') in err.value.problems


def test_vcf_spine_count_and_member_limits():
    with pytest.raises(specmod.SpecError) as err:
        builders.vcf(spines=1, leaves=2)
    assert any(p.startswith('vcf.spines: a Virtual Chassis Fabric pod has 2 '
                            'to 8 spines') for p in err.value.problems)
    with pytest.raises(specmod.SpecError) as err:
        builders.vcf(spines=4, leaves=30)
    assert 'vcf: a Virtual Chassis Fabric pod has at most 32 members ' \
        '(found 34)' in err.value.problems
    assert builders.vcf(spines=4, leaves=28)['fabric'] == 'vcf'


def test_all_errors_are_reported_at_once():
    spec = small()
    spec['nodes']['hv1']['colour'] = 'blue'
    spec['nodes']['x1'] = {'role': 'router'}
    spec['links'].append('leaf1-nosuch')
    spec['logical_switches']['ls2']['vni'] = 5001
    spec['extra'] = 1
    got = problems(spec)
    assert 'nodes.hv1.colour: unknown key for a hypervisor; allowed: none' \
        in got
    assert any(p.startswith("nodes.x1.role: unknown role 'router'; use one "
                            'of ') for p in got)
    assert any(p.endswith(": unknown node 'nosuch'; declare it under nodes")
               for p in got)
    assert 'logical_switches.ls2.vni: VNI 5001 is already used by ls1; ' \
        'pick another' in got
    assert any(p.startswith('extra: unknown top-level key') for p in got)
    assert len(got) >= 5


@pytest.mark.parametrize('mutate, expected', [
    (lambda s: s['links'].append('leaf1hv1'),
     "write a link as 'nodeA-nodeB'"),
    (lambda s: s['links'].append('spine1-hv1'),
     'a clos lab cannot link a spine to a hypervisor'),
    (lambda s: s['links'].append('leaf1-spine1'), 'duplicate link'),
    (lambda s: s['links'].remove('spine2-leaf1'),
     'nodes.leaf1: a leaf links to every spine; add spine2-leaf1'),
    (lambda s: s['links'].remove('hv1-vm1'),
     'nodes.vm1: a vm links to exactly one hypervisor (found 0)'),
    (lambda s: s['nodes']['vm1'].update(ls='nope'),
     "nodes.vm1.ls: logical switch 'nope' is not declared"),
    (lambda s: s['nodes']['vm1'].update(ip='10.1.0.300/24'),
     'is not an address with prefix'),
    (lambda s: s['logical_switches']['ls1'].update(vni=0),
     'logical_switches.ls1.vni: a VNI is an integer 1..16777215'),
    (lambda s: s['logical_switches']['ls1'].update(vni=16777216),
     'logical_switches.ls1.vni: a VNI is an integer 1..16777215'),
    (lambda s: s['links'].append({'link': 'seg1-bm2', 'vlan': 4095}),
     'a VLAN id is an integer 0..4094'),
    (lambda s: s.update(fabric='ring'), 'fabric: required, one of clos, vcf'),
    (lambda s: s.update(mtu=1500), 'mtu: underlay MTU 1550..9000'),
    (lambda s: s.update(bfd_interval_ms=20),
     'bfd_interval_ms: the BFD interval to the service nodes, an integer '
     '50..10000 ms (--bfd-interval); leave it out for the default sized to the lab'),
    (lambda s: s.update(bfd_interval_ms='1s'), 'bfd_interval_ms: '),
    (lambda s: s.update(tls='yes'), 'tls: true (the default: the control '
     "channels run over TLS with the lab's CA) or false"),
    (lambda s: s.update(controllers=2), 'controllers: 2 is even; a cluster '
     'changes its configuration only with a majority, and 2 nodes lose it '
     'when 1 of them fails, just as 1 node would'),
    (lambda s: s.update(controllers=4), 'use 1, 3 or 5'),
    (lambda s: s.update(controllers=7), 'controllers: 7 is not a number of '
     'controller nodes; use 1 (the default'),
    (lambda s: s.update(controllers=True), 'controllers: True is not'),
    (lambda s: s['nodes'].update({'Bad-Name': {'role': 'vm'}}),
     'node names are 1-10 lowercase letters or digits'),
])
def test_bad_specs_name_the_field_and_the_fix(mutate, expected):
    spec = small()
    mutate(spec)
    got = problems(spec)
    assert any(expected in p for p in got), got


def test_vcf_has_a_single_vtep():
    spec = copy.deepcopy(builders.vcf())
    spec['nodes']['vtep2'] = {'role': 'hw_vtep'}
    spec['links'].append('spine2-vtep2')
    assert any(p.startswith('vcf.hw_vtep: a Virtual Chassis Fabric pod has a '
                            'single VTEP') for p in problems(spec))


def test_load_does_not_change_the_spec():
    spec = small()
    before = copy.deepcopy(spec)
    specmod.load(spec)
    assert spec == before


def test_builder_lab_files_reject_unknown_keys():
    with pytest.raises(specmod.SpecError) as err:
        labs.from_data({'builder': 'mesh', 'size': 3}, 'x.yaml')
    assert "x.yaml: unknown key 'size' in a builder lab; allowed: builder, " \
        'params, description' in err.value.problems
    assert "x.yaml.builder: use clos or vcf, not 'mesh'" in err.value.problems


def test_resolve_unknown_topology_says_what_exists():
    with pytest.raises(specmod.SpecError) as err:
        labs.resolve('nosuch')
    assert "--topo: no lab or file 'nosuch'; use clos, vcf" in \
        err.value.problems[0]
