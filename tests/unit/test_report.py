"""./run.py report: the newest result per run, in one table."""
import json

from scenarios import report


def put(root, name, stamp, res):
    d = root / name / stamp
    d.mkdir(parents=True)
    (d / 'result.json').write_text(json.dumps(res))


def test_latest_result_per_run_with_its_figures(tmp_path):
    put(tmp_path, 'arp-flow-clos', '20261125T100000Z',
        {'name': 'arp-flow', 'topology': 'a', 'passed': False,
         'metrics': {}})
    put(tmp_path, 'arp-flow-clos', '20261125T110000Z',
        {'name': 'arp-flow', 'topology': 'a', 'passed': True,
         'metrics': {'checks': [{'claim': 'x', 'held': True}]}})
    put(tmp_path, 'headless-vcf', '20261125T120000Z',
        {'name': 'headless', 'topology': 'b', 'passed': True,
         'metrics': {'streams': {'vm1->vm3': {'lost': 0, 'sent': 100}}}})
    rows = report.rows(report.latest(str(tmp_path)))
    assert rows == [
        ('arp-flow-clos', '20261125T110000Z', 'a', 'PASS',
         'claims held=1/1'),
        ('headless-vcf', '20261125T120000Z', 'b', 'PASS',
         'vm1->vm3 lost=0/100')]
    md, png, _ = report.write(str(tmp_path))
    assert 'claims held=1/1' in open(md).read()
    assert open(png, 'rb').read(4) == b'\x89PNG'


def test_failure_scenarios_show_outages_and_targets():
    from scenarios import report
    res = {'name': 'gateway-failover', 'topology': 'clos-small',
           'passed': True, 'metrics': {
               'outages': {'@10ms crash vm->server': {
                   'n': 20, 'p50': 90.0, 'p95': 110.0, 'max': 130.0}},
               'targets': [{'key': 'crash vm->server', 'met': False},
                           {'key': 'x', 'met': True}]}}
    rows = report.rows({'gateway-failover-clos': ('20261126T000000Z', res)})
    assert '@10ms crash vm->server p50/p95 90.0/110.0 ms (n=20)' in rows[0][4]
    assert 'targets met 1/2' in rows[0][4]
