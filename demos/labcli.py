"""The Mininet CLI on a running lab, with commands that speak the lab's
language (`help` lists them):

    flows NODE            OpenFlow flows, ports/MACs/VNIs named
    macs NODE             MAC tables (vtep-ctl local/remote MACs on a
                          hardware VTEP; the controller's unicast entries
                          on a hypervisor or gateway; the learned FDB on a
                          physical segment)
    trace NODE FLOW       ovs-appctl ofproto/trace br-int FLOW (names work:
                          in_port=vm1,dl_dst=vm3)
    fail NODE|A-B         crash a node's ovs-vswitchd (a hardware VTEP
                          loses power: its device, ovs-vswitchd and
                          database; a router or host: interfaces down) /
                          cut a link
    restore               undo every `fail`, last first
    tenants               logical switches, their ports and gateway
                          bindings, from the controller's API
    map [ls NAME|vm NAME] the lab's map from the controller (GET /map):
                          underlay, VTEPs, tunnels, logical switches; or
                          one switch; or one VM's or server's path
    dfw NODE              the distributed firewall at each VM port of a
                          hypervisor: the rules that apply, each way, and
                          the packets each one passed or dropped
"""

import re

from mininet.cli import CLI
from mininet.log import LEVELS, lg, output, setLogLevel

from controllers import dfw, labmap
from scenarios import faults

from . import readable

OVS_ROLES = ('hypervisor', 'service_node', 'sw_gateway', 'hw_vtep',
             'l2_segment')


class LabCLI(CLI):
    prompt = 'nsx-lab> '
    helpStr = CLI.helpStr + __doc__.split('\n\n', 1)[1]

    def __init__(self, lab, **kw):
        self.lab, self.plan, self.failed = lab, lab.plan, []
        if lg.getEffectiveLevel() > LEVELS['output']:
            setLogLevel('output')       # node commands print at this level
        super().__init__(lab.mininet(), **kw)

    # -- helpers ---------------------------------------------------------
    def say(self, text):
        """Through Mininet's own output (the stream its node commands and
        help use), so a session reads in order."""
        output(text.rstrip('\n') + '\n')

    def _node(self, name):
        if name not in self.plan['nodes']:
            self.say(f'*** no node {name!r}; nodes: '
                     + ' '.join(sorted(self.plan['nodes'])))
            return None
        return self.plan['nodes'][name]

    def _ovs(self, name, cmd):
        p = self._node(name)
        if p is None:
            return None
        if p['role'] not in OVS_ROLES:
            self.say(f'*** {name} is a {p["role"]}, it runs no OVS'
                     + (f": try `{name} vtysh -c 'show ip route'`"
                        if p['role'] in ('spine', 'leaf') else ''))
            return None
        r = self.lab.node(name).ns_run(cmd, timeout=15)
        if r.returncode:
            self.say(f'*** {" ".join(cmd)} failed: {r.stderr.strip()}')
            return None
        return r.stdout

    def _bridges(self, name):
        out = self._ovs(name, ['ovs-vsctl', '--timeout=5', 'list-br'])
        return out.split() if out is not None else []

    # -- commands --------------------------------------------------------
    def do_flows(self, line):
        "flows NODE: OpenFlow flows of every bridge, with readable names."
        name = line.strip()
        for br in self._bridges(name):
            dump = self._ovs(name, ['ovs-ofctl', '-O', 'OpenFlow13',
                                    'dump-flows', br])
            if dump is None:
                continue
            self.say(f'--- {name} {br}')
            for f in readable.flows(self.plan, name, dump, br == 'br-int'):
                self.say('  ' + f)

    def do_macs(self, line):
        "macs NODE: MAC tables (vtep-ctl for hardware VTEPs)."
        name = line.strip()
        p = self._node(name)
        if p is None:
            return
        if p['role'] == 'hw_vtep':
            db = f'--db={self.lab.db(name)}'
            for ls in self.lab.node(name).ns_run(
                    ['vtep-ctl', db, 'list-ls']).stdout.split():
                for what in ('list-local-macs', 'list-remote-macs'):
                    out = self.lab.node(name).ns_run(
                        ['vtep-ctl', db, what, ls]).stdout
                    self.say(f'--- {name} {what} {ls}')
                    self.say(out.strip() or '  (none)')
        elif p['role'] == 'l2_segment':
            for br in self._bridges(name):
                self.say(f'--- {name} {br} (learned)')
                fdb = self._ovs(name, ['ovs-appctl', 'fdb/show', br]) or ''
                for ln in fdb.splitlines():
                    self.say(readable.annotate(self.plan, name, ln, False))
        else:
            dump = self._ovs(name, ['ovs-ofctl', '-O', 'OpenFlow13',
                                    'dump-flows', 'br-int', 'table=1'])
            if dump is not None:
                self.say(f'--- {name}: logical switch, MAC -> where')
                for row in readable.mac_table(self.plan, name, dump):
                    self.say('  ' + row)

    def do_trace(self, line):
        "trace NODE FLOW: ofproto/trace on NODE's br-int (names allowed)."
        parts = line.split(None, 1)
        if len(parts) != 2:
            self.say('usage: trace NODE FLOW, e.g. trace hv1 '
                     'in_port=vm1,dl_src=vm1,dl_dst=vm3')
            return
        name, flow = parts
        if self._node(name) is None:
            return
        try:
            flow = readable.resolve_flow(self.plan, name, flow.strip())
        except ValueError as exc:
            self.say(f'*** {exc}')
            return
        out = self._ovs(name, ['ovs-appctl', 'ofproto/trace', 'br-int',
                               flow])
        if out is not None:
            view = self.plan['nodes'][name]['role'] == 'hypervisor' and \
                self._firewall(name)
            rules = view['rules'] if view else []
            for ln in out.splitlines():
                self.say(readable.annotate(self.plan, name, ln)
                         + self._rule_note(rules, ln))

    @staticmethod
    def _rule_note(rules, line):
        """'  <- rule web-in (allow)' after a traced firewall flow."""
        m = re.match(r'\s*(\d+)\. .*priority (\d+)', line)
        what = m and dfw.rule_at(rules, int(m.group(1)), int(m.group(2)))
        return f'   <- firewall: {what}' if what else ''

    def _firewall(self, name):
        """The controller's view of the firewall at hypervisor `name`
        (GET /transport-nodes/{name}/firewall), or None (said why)."""
        status, view = self.lab.ctl.request(
            'GET', f'/transport-nodes/{name}/firewall')
        if status != 200:
            err = (view or {}).get('error', {})
            self.say(f"*** {err.get('message', view)}")
            return None
        return view

    def do_dfw(self, line):
        "dfw NODE: firewall rules at each VM port of NODE, with packets."
        name = line.strip()
        if self._node(name) is None:
            return
        view = self._firewall(name)
        if view is None:
            return
        for ln in dfw.view_text(view):
            self.say(ln)

    def do_fail(self, line):
        "fail NODE|A-B: crash NODE's daemons (kill -9; a hardware VTEP: "\
            "all of them; routers and hosts: interfaces down), or cut link "\
            "A-B (the lab's fault catalog, scenarios/faults.py)."
        try:
            target = readable.failure_target(self.plan, line.strip())
        except ValueError as exc:
            self.say(f'*** {exc}')
            return
        offered = faults.targets(self.plan)
        if target[0] == 'link':
            fault = {'kind': 'cut', 'target': f'{target[1]}-{target[3]}'}
        elif target[1] in offered['crash']:
            fault = {'kind': 'crash', 'target': target[1]}
        elif target[1] in offered['down']:
            fault = {'kind': 'down', 'target': target[1]}
        else:
            self.say(f'*** {target[1]}: nothing to fail there')
            return
        try:
            rec = faults.apply(self.lab, fault)
        except (RuntimeError, OSError, ValueError) as exc:
            self.say(f'*** {faults.describe(fault)}: {exc}')
            return
        self.failed.append(rec)
        self.say(f"{faults.describe(fault)}: {'; '.join(rec['done'])}")

    def do_restore(self, _line):
        "restore: undo every `fail`, the last one first."
        if not self.failed:
            self.say('nothing to restore')
        while self.failed:
            rec = self.failed.pop()
            what = faults.describe(rec['fault'])
            try:
                faults.repair(self.lab, rec)
                self.say(f'undone: {what}')
            except (RuntimeError, OSError) as exc:
                self.say(f'*** {what}: not undone: {exc}')

    def do_tenants(self, _line):
        "tenants: logical switches, ports and gateway bindings (API)."
        ctl = self.lab.ctl
        conns = ctl.get('/gateway-connections')
        for ls in ctl.get('/logical-switches'):
            self.say(f"{ls['name']} (id {ls['id']}, VNI {ls['vni']}, "
                     f"{ls.get('replication_mode', 'service_node')})")
            for p in ctl.get(f"/logical-switches/{ls['id']}/ports"):
                self.say(f"  port {p['id']}: {p['attachment']} on "
                         f"{p.get('transport_node', '?')}  {p.get('mac', '')}"
                         f"  {p.get('ip') or ''}".rstrip())
            for c in conns:
                if c['ls_id'] == ls['id']:
                    vlan = f"VLAN {c['vlan']}" if c['vlan'] else 'untagged'
                    self.say(f"  gateway {c['gateway']} port {c['port']} "
                             f"{vlan}")

    def do_map(self, line):
        "map [ls NAME | vm NAME]: the lab's map, one switch, or one path."
        words = line.split()
        if words and (len(words) != 2 or words[0] not in ('ls', 'vm')):
            self.say('usage: map, map ls NAME or map vm NAME (a VM or '
                     'server), e.g. map vm vm5')
            return
        m = self.lab.ctl.get('/map')
        pick = dict([words]) if words else {}
        try:
            lines = labmap.text(m, **pick)
        except KeyError as exc:
            self.say(f'*** {exc.args[0]}')
            return
        for ln in lines:
            self.say(ln)
