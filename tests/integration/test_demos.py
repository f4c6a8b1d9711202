"""Each demo runs with --auto on a real lab: it must pass (every step as
the whitepaper describes), leave its diagram, topology picture, transcript
and a pcap per hop that tshark opens, and its diagram's lanes and arrows
must match the frames in those pcaps (decoded again here)."""
import contextlib
import json
import os
import subprocess
import sys
import time

import pytest

from demos import wire
from scenarios import harness
from topologies import expand

from .conftest import last_json, run_py

PNG = b'\x89PNG\r\n\x1a\n'


def _png(path):
    with open(path, 'rb') as f:
        assert f.read(8) == PNG, path
    assert os.path.getsize(path) > 10000, path


def tunnelled_in_pcaps(plan, pcaps, pair, window):
    """{(sender VTEP, receiver VTEP, VNI)} of the pair's frames in every
    uplink pcap within the act's capture window, named from the outer
    IPs."""
    vteps = wire.vtep_names(plan)
    out = set()
    for path in pcaps.values():
        for r in wire.within(harness.decode(path), window):
            if 'vni' in r and wire.relevant(r, pair):
                out.add((vteps[r['outer_src']], vteps[r['outer_dst']],
                         r['vni']))
    return out


def check_outputs(res, plan):
    out = os.path.dirname(next(a for a in res['artifacts']
                               if a.endswith('result.json')))
    _png(os.path.join(out, 'sequence.png'))
    _png(os.path.join(out, 'topology.png'))
    with open(os.path.join(out, 'transcript.txt')) as f:
        text = f.read()
    assert 'Whitepaper (' in text and 'Observed on the wire' in text
    with open(os.path.join(out, 'diagram.json')) as f:
        m = json.load(f)
    with open(os.path.join(out, 'map.json')) as f:   # the replay's map:
        lab_map = json.load(f)                        # every box is on it
    on_map = {x['name'] for x in lab_map['underlay']['switches']
              + lab_map['vteps'] + lab_map['endpoints']}
    assert set(m['lanes']) <= on_map, set(m['lanes']) - on_map
    for a in m['arrows']:
        assert a['src'] in m['lanes'] and a['dst'] in m['lanes'], a
    for act, pcaps in m['pcaps'].items():
        for path in pcaps.values():             # a pcap per hop, tshark
            r = subprocess.run(['tshark', '-r', path, '-c', '1'],
                               capture_output=True, text=True)
            assert r.returncode == 0, (path, r.stderr)
        drawn = {(a['src'], a['dst'], int(a['label'].split('VNI ')[1]))
                 for a in m['arrows'] if str(a['act']) == act and
                 'VNI' in a['label']}
        window = m['windows'][act]
        assert drawn == tunnelled_in_pcaps(plan, pcaps, m['pairs'][act],
                                           window)
        # every host that sent or got a frame of the pair has its arrow
        for point, path in pcaps.items():
            if plan['nodes'].get(point, {}).get('role') not in (
                    'vm', 'bare_metal'):
                continue
            if any(wire.relevant(r, m['pairs'][act])
                   for r in wire.within(harness.decode(path), window)):
                assert any(point in (a['src'], a['dst'])
                           for a in m['arrows'] if str(a['act']) == act), \
                    (act, point)
    return m, text


@pytest.mark.parametrize('name,spec', [
    ('arp-flow', 'arp_flow'), ('hw-arp-flow', 'hw_arp_flow'),
    ('unicast', 'arp_flow'), ('gateway-failover', None), ('p2v', None),
    ('dfw', None)])
def test_demo_runs_through_and_its_diagram_matches_the_pcaps(name, spec,
                                                             tmp_path):
    r = run_py('demo', name, '--auto', '--json', timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    res = last_json(r.stdout)
    assert res['passed'] and res['metrics']['steps_held'] == \
        res['metrics']['steps_total'] > 0
    if spec:
        import importlib
        plan = expand.expand(importlib.import_module(
            f'scenarios.{spec}').spec('clos'))
    else:
        from topologies import labs
        plan = expand.expand(labs.resolve('clos'))
    m, text = check_outputs(res, plan)
    assert len(m['arrows']) >= 4
    if name == 'arp-flow':
        pairs = {(a['src'], a['dst']) for a in m['arrows']}
        assert ('gw1', 'hv1') in pairs and ('gw1', 's') in pairs
        assert 'hv3' in m['no_copy']
        assert 'No copy at hv3: Hypervisor 3 hosts no VM' in text
        replay_in_a_browser(res, m, tmp_path)


@contextlib.contextmanager
def results_server():
    """The web view's pages and results/ served on loopback (the API with
    no lab behind it: a replay needs only files), -> its base URL."""
    import socket
    import threading
    import uvicorn
    from controllers import api, model
    from scenarios import results
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(
        api.create_app(model.Store(), results_dir=results.ROOT),
        host='127.0.0.1', port=port, log_level='warning'))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, 'the results server did not start'
        yield f'http://127.0.0.1:{port}'
    finally:
        server.should_exit = True
        t.join(10)


def replay_in_a_browser(res, m, tmp_path):
    """The demo's replay page (reached from the results page) steps
    through every arrow of its diagram.json, each drawn on the topology
    between the boxes the captures saw, and ends on the boxes no copy
    reached; no console errors."""
    from selenium.webdriver.common.by import By
    from .browser import browser, wait
    out = os.path.dirname(next(a for a in res['artifacts']
                               if a.endswith('result.json')))
    run = f'{os.path.basename(os.path.dirname(out))}/{os.path.basename(out)}'
    with results_server() as base:
        drv = browser(tmp_path / 'chromium')
        try:
            drv.get(base + '/ui/results.html')
            wait(drv, 'return window.nsxResults && nsxResults.data', 10)
            drv.find_element(By.CSS_SELECTOR,
                             f'tr[data-run="{run}"] a.replay').click()
            wait(drv, 'return window.nsxReplay && nsxReplay.steps.length', 10)
            assert drv.execute_script('return nsxReplay.steps.length') == \
                len(m['arrows'])
            for k, a in enumerate(m['arrows'], 1):
                drv.find_element(By.ID, 'next').click()
                edge = drv.execute_script(
                    'const e = nsxReplay.cy.getElementById(arguments[0]);'
                    ' return e.length ? [e.source().id(), e.target().id(),'
                    ' e.hasClass("now")] : null', f'a{k}')
                assert edge == [a['src'], a['dst'], True], (k, a, edge)
                label = ' '.join(a['label'].split())     # as HTML shows it
                assert f"{a['src']} → {a['dst']}: {label}" in \
                    drv.find_element(By.ID, 'now').text
            assert 'hv3' in drv.find_element(By.ID, 'nocopy').text
            drv.save_screenshot(os.path.join(out, 'replay.png'))
            errors = [e for e in drv.get_log('browser')
                      if e['level'] == 'SEVERE']
            assert not errors, errors
        finally:
            drv.quit()


CLI_SCRIPT = """help
flows hv1
macs hv1
macs vtep1
trace hv1 in_port=vm1,dl_src=vm1,dl_dst=vm3
trace hv1 in_port=vm9
map vm vm5
map ls ls2
map vm vm99
sh for i in $(seq 60); do {python} run.py map | grep -q 'seg1 standb[y]' && [ "$({python} run.py map --node vtep1 | grep -c '[)]: u[p]')" -ge 2 ] && break; sleep 0.5; done
sh {python} run.py map --vm bm1
sh {python} run.py map
sh {python} run.py map --node hv1
sh {python} run.py map --node vtep1
sh {python} run.py map --counters
sh {python} run.py map --underlay
dfw hv3
dfw gw1
fail leaf1-hv1
vm1 ping -c 1 -W 1 10.1.0.15
restore
fail gw1
restore
tenants
fail nothere
"""


def test_cli_lab_commands_on_a_running_lab(tmp_path):
    # the script's first `sh` waits (at most ~60 tries) for what the lab
    # settles after it is up and the maps below show: gw1 and gw2 elected
    # (CFM), vtep1's own BFD to both service nodes
    script = tmp_path / 'cli.txt'
    # `sh` runs `./run.py map` as a second process beside the lab
    script.write_text(CLI_SCRIPT.format(python=sys.executable))
    r = run_py('cli', '--topo', 'clos', '--script', str(script), timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    for expected in (
            'tenants               logical switches',          # help
            'actions=output:2(vm1)', '(tunnel->hv3)',         # flows
            'ls1  02:00:00:02:00:13 (vm3)  ->  tunnel->hv3',  # macs hv1
            'ucast-mac-remote',                               # vtep-ctl
            'Datapath actions: tnl_push',                     # trace
            'hv1 has no port facing vm9',
            'cut link leaf1-hv1: leaf1:hv1 down; hv1:leaf1 down',
            '1 packets transmitted, 0 received',      # the cut is real
            'undone: cut link leaf1-hv1',
            'crash gw1 (kill -9): ovs-vswitchd pid',
            'undone: crash gw1 (kill -9)',
            'gateway gw1 port seg1 VLAN 100',                 # tenants
            "'nothere' is neither a node nor a link",
            # map (in the CLI, then ./run.py map beside it)
            'vm5 -> hv2 (port 3; leaf2, 198.19.64.17) -> ls1 VNI 5001 -> '
            'members gw1, gw2, hv1, hv2, hv3, vtep1, vtep2',
            '  members: hv1, hv2, hv3',
            "no VM or server named 'vm99'",
            'bm1 -> vtep2 (port bm1; leaf2, 198.19.64.11) VLAN 0 <-> VNI '
            '5001 -> ls1',
            'lab clos-small: clos underlay, 5 switches, 15 cables',
            'tunnels: 35, 14 with BFD',
            'seg1 active', 'seg1 standby',       # gw1 and gw2, by CFM
            # a device's tables, asked of it (./run.py map --node, --counters)
            'hv1 (read from its openflow)',
            'in_port=2(vm1) actions=set_field:{tunnel_id:5001(ls1)}',
            'vtep1 (read from its ovsdb (vtep))', 'bm1 VLAN 0 <-> ls1 VNI 5001',
            'sn1 (198.19.64.13): up', 'sn2 (198.19.64.3): up',
            '\nhv3      tunnel->sn1 ', '\nsn2      tunnel->gw1 ',
            # the underlay as its routers report it (--underlay)
            'leaf1 - spine1: Established / Established',
            'leaf2 - spine2: Established / Established',
            'leaf1 -> vtep2, sn1, gw1, hv2: via spine1, spine2 (2 paths)',
            # the distributed firewall (no rule in this lab)
            'no firewall rule: every VM port is open',
            'gw1 is a sw_gateway: the distributed firewall runs at VM '
            'ports'):
        assert expected in out, expected
