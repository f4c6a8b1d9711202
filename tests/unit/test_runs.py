"""controllers/runs.py: the results page's list of runs."""
import json
import os

from controllers import runs


def _run(root, name, stamp, result, files=()):
    d = os.path.join(root, name, stamp)
    os.makedirs(d)
    with open(os.path.join(d, 'result.json'), 'w') as f:
        f.write(result if isinstance(result, str) else json.dumps(result))
    for fn in files:
        open(os.path.join(d, fn), 'w').close()


def test_runs_newest_first_with_verdicts_and_files(tmp_path):
    root = str(tmp_path)
    _run(root, 'gateway-failover-clos', '20261201T100000Z',
         {'passed': True, 'topology': 'clos-small'},
         ('failover.png', 'probe.bin'))
    _run(root, 'controller-failover-vcf', '20261201T110000Z',
         {'passed': False, 'topology': 'vcf-small'}, ('takeover-cdf.png',))
    _run(root, 'soak-clos', '20261130T090000Z', '{not json')
    os.makedirs(os.path.join(root, 'topo', 'notastamp'))
    open(os.path.join(root, 'report.md'), 'w').close()
    out = runs.runs(root)
    assert [(r['name'], r['passed']) for r in out['runs']] == [
        ('controller-failover-vcf', False), ('gateway-failover-clos', True),
        ('soak-clos', None)]
    assert out['runs'][1]['files'] == ['failover.png', 'result.json']
    assert out['runs'][2]['problem'].startswith('result.json unreadable')
    assert out['report'] == ['report.md'] and out['total'] == 3
    assert runs.runs(root, limit=1)['runs'][0]['stamp'] == '20261201T110000Z'


def test_a_run_that_is_not_an_object_is_listed_with_its_problem(tmp_path):
    _run(str(tmp_path), 'topo', '20261201T100000Z', '[1, 2]')
    [run] = runs.runs(str(tmp_path))['runs']
    assert run['passed'] is None and 'not a JSON object' in run['problem']


def test_no_results_yet(tmp_path):
    assert runs.runs(str(tmp_path / 'missing')) == {'runs': [], 'report': [],
                                                    'total': 0}


def test_the_api_lists_runs_and_serves_their_files(tmp_path):
    from fastapi.testclient import TestClient
    from controllers import api, model
    root = str(tmp_path)
    _run(root, 'vm-move-clos', '20261201T100000Z',
         {'passed': True, 'topology': 'clos-small'}, ('move.png',))
    run = os.path.join(root, 'vm-move-clos', '20261201T100000Z')
    for fn in ('hv1-eth0.pcap', 'page.html'):
        open(os.path.join(run, fn), 'w').close()
    with open(os.path.join(os.path.dirname(root), 'secret.txt'), 'w') as f:
        f.write('outside results/')
    c = TestClient(api.create_app(model.Store(), results_dir=root))
    got = c.get(api.PREFIX + '/results').json()
    assert [r['name'] for r in got['runs']] == ['vm-move-clos']
    r = c.get('/results/vm-move-clos/20261201T100000Z/move.png')
    assert r.status_code == 200 and r.headers['content-type'] == \
        'image/png' and r.headers['x-content-type-options'] == 'nosniff'
    r = c.get('/results/vm-move-clos/20261201T100000Z/result.json')
    assert r.json()['passed'] is True
    # a capture, HTML, and anything outside results/ are not served
    for path in ('vm-move-clos/20261201T100000Z/hv1-eth0.pcap',
                 'vm-move-clos/20261201T100000Z/page.html',
                 '%2e%2e/secret.txt', '..%2fsecret.txt'):
        r = c.get('/results/' + path)
        assert r.status_code == 404, path
        assert 'outside' not in r.text
    r = c.get(api.PREFIX + '/results?limit=0')
    assert r.status_code == 400 and r.json()['error']['field'] == 'limit'
    # no results directory given: an empty list, not an error
    assert TestClient(api.create_app(model.Store())).get(
        api.PREFIX + '/results').json()['total'] == 0
    for f in ('results.html', 'results.js', 'switches.html', 'switches.js'):
        assert c.get('/ui/' + f).status_code == 200, f
