"""A fake OpenFlow switch for the hardware VTEP's pipeline: tables, goto,
registers, resubmit, VLAN push/pop, tunnel fields, fast-failover groups,
output to the controller. It tells where a frame goes, so tests assert
forwarding, not flow text."""

FIELDS = ('in_port', 'tunnel_id', 'eth_dst', 'eth_src', 'reg1', 'reg2',
          'reg3', 'reg4')


def _matches(match, pkt):
    for k, v in match.items():
        if isinstance(v, tuple):             # (value, mask) of a MAC
            val, mask = (int(x.replace(':', ''), 16) for x in v)
            if int(pkt.get(k, '00:00:00:00:00:00').replace(':', ''), 16) \
                    & mask != val & mask:
                return False
            continue
        if k == 'vlan_vid':          # 0: untagged
            if (pkt['vlans'][0] if pkt['vlans'] else 0) != v:
                return False
        elif k == 'vlan_tag':        # tagged with this VID (0 included)
            if not pkt['vlans'] or pkt['vlans'][0] != v:
                return False
        elif pkt.get(k, 0) != v:
            return False
    return True


class Switch:
    """flows, groups: the pipeline's data; live: ports that are live (a
    fast-failover bucket watching another port is skipped)."""

    def __init__(self, flows, groups=(), live=None):
        self.flows, self.live = flows, live
        self.groups = {g['group_id']: g for g in groups}

    def send(self, in_port, eth_dst, eth_src='02:00:00:00:99:99', vlans=(),
             tunnel_id=None):
        """-> (sorted copies [(port, (vlans...), tunnel_id, tun_dst)],
        sent to the controller?)"""
        pkt = {'in_port': in_port, 'eth_dst': eth_dst, 'eth_src': eth_src,
               'vlans': list(vlans), 'tunnel_id': tunnel_id or 0}
        self.out, self.punted = [], False
        self._table(pkt, 0)
        return sorted(self.out), self.punted

    def _table(self, pkt, table, depth=0):
        assert depth < 16, 'resubmit loop'
        cands = [f for f in self.flows if f['table'] == table and
                 _matches(f['match'], pkt)]
        if not cands:
            return
        best = max(f['priority'] for f in cands)
        top = [f for f in cands if f['priority'] == best]
        assert len(top) == 1, f'ambiguous flows in table {table}: {top}'
        f = top[0]
        self._apply(pkt, f['actions'], depth)
        if f['goto'] is not None:
            self._table(pkt, f['goto'], depth + 1)

    def _apply(self, pkt, actions, depth):
        for a in actions:
            kind = a[0]
            if kind == 'output':
                if a[1] != pkt['in_port']:
                    self.out.append((a[1], tuple(pkt['vlans']),
                                     pkt['tunnel_id'], pkt.get('tun_dst')))
            elif kind == 'output_vlan':
                if a[1] != pkt['in_port']:
                    vl = ((a[2],) if a[2] else ()) + tuple(pkt['vlans'])
                    self.out.append((a[1], vl, pkt['tunnel_id'], None))
            elif kind == 'output_in_port_vlan':
                vl = ((a[1],) if a[1] else ()) + tuple(pkt['vlans'])
                self.out.append((pkt['in_port'], vl, pkt['tunnel_id'], None))
            elif kind == 'push_vlan':
                pkt['vlans'].insert(0, a[2])
            elif kind == 'pop_vlan':
                pkt['vlans'].pop(0)
            elif kind == 'set_tunnel':
                pkt['tunnel_id'] = a[1]
            elif kind == 'set_tun_dst':
                pkt['tun_dst'] = a[1]
            elif kind == 'set_reg':
                pkt[f'reg{a[1]}'] = a[2]
            elif kind == 'resubmit':
                self._table(pkt, a[1], depth + 1)
            elif kind == 'controller':
                self.punted = True
            elif kind == 'group':
                g = self.groups[a[1]]
                for b in g['buckets']:
                    if b['watch_port'] is None or self.live is None or \
                            b['watch_port'] in self.live:
                        self._apply(pkt, b['actions'], depth)
                        break
            else:
                raise AssertionError(f'unknown action {a}')
