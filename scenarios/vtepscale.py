"""The benchmark's own NVC for scale tests: writes rows straight into a
hardware VTEP's database (python-ovs IDL, blocking commits: a tool, not a
control loop), as a controller would, in single transactions."""
import sys
import time

sys.modules.setdefault('eventlet', None)
import ovs.db.idl  # noqa: E402
import ovs.poller  # noqa: E402

SCHEMA = '/usr/share/openvswitch/vtep.ovsschema'
MAC_PREFIX = '02:44'
VXLAN = 'vxlan_over_ipv4'


def scale_mac(k):
    return f'{MAC_PREFIX}:00:{(k >> 16) & 0xff:02x}:{(k >> 8) & 0xff:02x}:' \
        f'{k & 0xff:02x}'


class Db:
    def __init__(self, remote, timeout=30):
        helper = ovs.db.idl.SchemaHelper(location=SCHEMA)
        helper.register_all()
        self.idl = ovs.db.idl.Idl(remote, helper)
        deadline = time.time() + timeout
        while self.idl.change_seqno == 0:
            if time.time() > deadline:
                raise RuntimeError(f'no OVSDB session to {remote}')
            self.idl.run()
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.timer_wait(100)
            poller.block()

    def _rows(self, table):
        return list(self.idl.tables[table].rows.values())

    def _commit(self, build):
        """Build and commit one transaction; -> the time it committed."""
        while True:
            self.idl.run()
            txn = ovs.db.idl.Transaction(self.idl)
            build(txn)
            status = txn.commit_block()
            if status in (txn.SUCCESS, txn.UNCHANGED):
                return time.time()
            if status != txn.TRY_AGAIN:
                raise RuntimeError(f'transaction: {txn.get_error()}')

    def _locator(self, txn, cache, ip):
        if ip not in cache:
            loc = next((r for r in self._rows('Physical_Locator')
                        if r.dst_ip == ip and not r.tunnel_key), None)
            if loc is None:
                loc = txn.insert(self.idl.tables['Physical_Locator'])
                loc.encapsulation_type, loc.dst_ip = VXLAN, ip
            cache[ip] = loc
        return cache[ip]

    def add_remote_macs(self, ls_name, n, ips):
        """n remote MACs in logical switch `ls_name`, spread over `ips`."""
        def build(txn):
            ls = next(r for r in self._rows('Logical_Switch')
                      if r.name == ls_name)
            cache = {}
            for k in range(n):
                row = txn.insert(self.idl.tables['Ucast_Macs_Remote'])
                row.MAC, row.logical_switch = scale_mac(k), ls
                row.locator = self._locator(txn, cache, ips[k % len(ips)])
        return self._commit(build)

    def delete_remote_macs(self, n):
        def build(txn):
            for r in self._rows('Ucast_Macs_Remote'):
                if r.MAC.startswith(MAC_PREFIX):
                    r.delete()
        return self._commit(build)

    def add_bindings(self, ps_name, port_name, n):
        """VLANs 1..n of a port, each bound to its own logical switch."""
        def build(txn):
            ps = next(r for r in self._rows('Physical_Switch')
                      if r.name == ps_name)
            port = next(p for p in ps.ports if p.name == port_name)
            bindings = dict(port.vlan_bindings)
            for vlan in range(1, n + 1):
                ls = txn.insert(self.idl.tables['Logical_Switch'])
                ls.name, ls.tunnel_key = f'scale{vlan}', [200000 + vlan]
                bindings[vlan] = ls
            port.vlan_bindings = bindings
        return self._commit(build)

    def binding_stats(self, port_name):
        """How many bindings of the port the switch reports counters for
        (Physical_Port vlan_stats)."""
        self.idl.run()
        port = next((p for p in self._rows('Physical_Port')
                     if p.name == port_name), None)
        return len(port.vlan_stats) if port is not None else 0

    def close(self):
        self.idl.close()
