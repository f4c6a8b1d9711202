"""The NSX API fuzzed from its own OpenAPI document with schemathesis:
requests that fit the schema and requests that do not (wrong types, missing
and extra fields, out-of-range ids), for every operation, with and without
existing ids. Every answer must be: no server error; every 4xx in the
project's one error format, naming a field, with a message; the database,
the in-memory move requests and the change counter unchanged by every
rejected request; `on_change` called only for committed writes.

Deterministic (derandomized hypothesis, no example database): the same
requests every run. FUZZ_EXAMPLES (default 40) sets the examples per
operation, mode and id choice; the test asserts how many requests it made.
"""
import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip('schemathesis')
from schemathesis import GenerationMode  # noqa: E402

from controllers import api, model  # noqa: E402

TOKEN = 'fuzz-token'
EXAMPLES = int(os.environ.get('FUZZ_EXAMPLES', '40'))
MIN_REQUESTS = 1000
INV = {f'vm{i}': {'transport_node': 'hv1' if i % 2 else 'hv2', 'ofport': i,
                  'mac': f'02:00:00:00:00:{i:02x}', 'ip': f'10.1.0.{i}/24'}
       for i in range(1, 9)}
NODES = {'hv1': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.1'},
         'hv2': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.2'},
         'gw1': {'role': 'sw_gateway', 'tunnel_ip': '1.0.0.3',
                 'ports': {'seg1': 2}},
         'tor1': {'role': 'hw_vtep', 'tunnel_ip': '1.0.0.4',
                  'ports': {'p1': 1, 'p2': 2}}}


def state(store):
    return ('\n'.join(store.db.iterdump()), store.generation,
            copy.deepcopy(store.inventory))


def check_error(resp):
    """-> None, or what is wrong with a 4xx answer."""
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        return f'not JSON: {resp.text[:200]!r}'
    err = body.get('error') if isinstance(body, dict) else None
    if not isinstance(err, dict) or set(err) != {'field', 'message'}:
        return f'not the error format: {body!r:.300}'
    if not (isinstance(err['field'], str) and err['field']):
        return f'no field named: {body!r:.300}'
    if not (isinstance(err['message'], str) and err['message'].strip()):
        return f'no message: {body!r:.300}'
    return None


@pytest.fixture(scope='module')
def lab():
    store = model.Store(inventory=copy.deepcopy(INV), nodes=NODES)
    changes = []
    app = api.create_app(store, lambda: changes.append(store.generation),
                         token=TOKEN)
    # something to hit: two switches, a port, a gateway connection
    store.create_ls({'name': 'web', 'vni': 5001, 'subnet': '10.1.0.0/24'})
    store.create_ls({'name': 'db', 'vni': 5002})
    store.attach(1, {'attachment': 'vm1'})
    store.connect_gateway({'ls_id': 1, 'gateway': 'gw1', 'port': 'seg1',
                           'vlan': 10})
    schema = schemathesis.openapi.from_asgi('/openapi.json', app)
    return {'store': store, 'changes': changes, 'schema': schema,
            'requests': 0, 'by_status': {}, 'problems': []}


PINS = {'name': 'hv1'}


def fuzz_one(lab, operation, mode, pin):
    store, changes = lab['store'], lab['changes']
    # pinned: an id that exists (1), or a transport node's name
    path_params = {p.name: PINS.get(p.name, 1)
                   for p in operation.path_parameters} if pin else None

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode,
                                      path_parameters=path_params))
    def run(case):
        before, n_changes = state(store), len(changes)
        resp = case.call(headers={'authorization': f'Bearer {TOKEN}'})
        lab['requests'] += 1
        lab['by_status'][resp.status_code] = \
            lab['by_status'].get(resp.status_code, 0) + 1
        where = (f'{case.method} {case.formatted_path} body='
                 f'{getattr(case, "body", None)!r:.200}')
        if resp.status_code >= 500:
            lab['problems'].append(f'{resp.status_code} for {where}: '
                                   f'{resp.text[:300]}')
        elif resp.status_code >= 400:
            wrong = check_error(resp)
            if wrong:
                lab['problems'].append(f'{resp.status_code} for {where}: '
                                       + wrong)
            if state(store) != before or len(changes) != n_changes:
                lab['problems'].append(f'{resp.status_code} for {where} '
                                       'changed the database')
        elif case.method != 'GET' and resp.status_code in (200, 201, 204) \
                and len(changes) != n_changes + 1:
            lab['problems'].append(f'{resp.status_code} for {where}: '
                                   'on_change not called once')
    run()


def test_fuzz_the_api_from_its_openapi_document(lab):
    ops = [r.ok() for r in lab['schema'].get_all_operations()]
    assert len(ops) >= 12, [o.label for o in ops]
    for op in ops:
        for pin in ((False, True) if op.path_parameters else (False,)):
            # a negative case needs something left to make invalid
            free = (op.path_parameters and not pin) or list(op.query) or \
                list(op.body)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[
                    :2 if free else 1]:
                fuzz_one(lab, op, mode, pin)
    print(f"\nfuzzed {lab['requests']} requests over {len(ops)} operations;"
          f" answers by status: {dict(sorted(lab['by_status'].items()))}")
    assert lab['problems'] == [], '\n'.join(lab['problems'][:20])
    assert lab['requests'] >= MIN_REQUESTS, lab['by_status']
    # both sides were reached: writes accepted and requests refused
    assert any(s < 300 for s in lab['by_status'])
    assert any(400 <= s < 500 for s in lab['by_status'])
