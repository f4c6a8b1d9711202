"""Where labs come from: the shipped YAML files under topologies/labs/, any
YAML file, or a builder with sizes given on the command line.

A lab file is either a full spec (see topologies.spec) or a builder call:

    builder: vcf            # clos | vcf
    params: {spines: 4, leaves: 28, hypervisors: 92, vms: 400}
"""
import glob
import os

import yaml

from . import builders, spec as specmod

LAB_DIR = os.path.join(os.path.dirname(__file__), 'labs')
BUILDERS = {'clos': builders.clos, 'vcf': builders.vcf}
ALIASES = {'clos': 'clos-small', 'vcf': 'vcf-small'}


def shipped():
    """{lab name: path} of the labs shipped with the project."""
    return {os.path.basename(p)[:-5]: p
            for p in sorted(glob.glob(os.path.join(LAB_DIR, '*.yaml')))}


def describe(path):
    with open(path) as f:
        data = yaml.safe_load(f)
    return data.get('description', '')


def from_data(data, where):
    if isinstance(data, dict) and 'builder' in data:
        extra = set(data) - {'builder', 'params', 'description'}
        problems = [f'{where}: unknown key {k!r} in a builder lab; allowed: '
                    'builder, params, description' for k in sorted(extra)]
        if data['builder'] not in BUILDERS:
            problems.append(f"{where}.builder: use clos or vcf, not "
                            f"{data['builder']!r}")
        if problems:
            raise specmod.SpecError(problems)
        return build(data['builder'], data.get('params') or {}, where)
    return specmod.load(data)


def build(kind, params, where='sizes'):
    try:
        return BUILDERS[kind](**params)
    except TypeError as exc:
        raise specmod.SpecError([f'{where}: {exc}']) from None
    except ValueError as exc:
        if isinstance(exc, specmod.SpecError):
            raise
        raise specmod.SpecError([str(exc)]) from None


def with_bfd_interval(spec, ms):
    """The same lab with BFD to the service nodes every `ms` (None: the
    lab's own setting or its size's default, topologies/liveness)."""
    return spec if ms is None else dict(spec, bfd_interval_ms=ms)


def with_controllers(spec, n):
    """The same lab with `n` controller nodes (1, 3 or 5: validated with
    the spec); None: the lab's own (one unless it says)."""
    return spec if n is None else dict(spec, controllers=n)


def with_tls(spec, on):
    """The same lab with its control channels over TLS (`on`), or plain
    (False); None: the lab's own setting (TLS unless it says)."""
    return spec if on is None else dict(spec, tls=on)


def with_vtep_device(spec, device):
    """The same lab with its hardware VTEPs run by `device` (native or
    ovs-vtep). A VCF pod VTEP moves with it: OVS's emulator is one node
    cabled to the first spine, the native device runs on the leaves."""
    if device is None or device == specmod.vtep_device(spec):
        return spec
    out = dict(spec, vtep_device=device, links=list(spec['links']))
    if spec['fabric'] == 'vcf':
        roles = {n: d['role'] for n, d in spec['nodes'].items()}
        vteps = [n for n, r in roles.items() if r == 'hw_vtep']
        spine = next((n for n, r in roles.items() if r == 'spine'), None)
        if device == 'native':
            out['links'] = [lk for lk in out['links']
                            if not set(specmod.parse_link(lk)[:2]) & set(vteps)
                            or any(roles[x] != 'spine' and x not in vteps
                                   for x in specmod.parse_link(lk)[:2])]
        elif vteps and spine:
            out['links'].append(f'{spine}-{vteps[0]}')
    return specmod.load(out)


def resolve(topo, sizes=None):
    """--topo clos|vcf|NAME|FILE.yaml (+ optional builder sizes) -> spec."""
    sizes = {k: v for k, v in (sizes or {}).items() if v is not None}
    if sizes:
        if topo not in BUILDERS:
            raise specmod.SpecError([f'--topo: sizes apply to the clos or vcf '
                                     f'builder, not {topo!r}'])
        return build(topo, sizes)
    labs = shipped()
    path = labs.get(ALIASES.get(topo, topo))
    if path is None:
        if not os.path.exists(topo):
            raise specmod.SpecError([
                f"--topo: no lab or file {topo!r}; use clos, vcf, one of "
                f"{', '.join(labs)}, or a path to a .yaml file"])
        path = topo
    with open(path) as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise specmod.SpecError([f'{path}: not valid YAML: {exc}']) \
                from None
    return from_data(data, os.path.basename(path))
