"""The service VM's firewall (pure): an nftables ruleset for a transparent
bridge (the vSRX's role in the whitepaper's "VMware NSX Integration with
Juniper vSRX Firewall"), its address sets following the controller's
security groups, and its counters read back.

The bridge joins the service VM's two interfaces; bridged IPv4 crosses
the kernel's inet hooks (br_netfilter, `bridge-nf-call-iptables` = 1), so
the `inet` family's conntrack sees it. (This kernel's `bridge` family has
no conntrack: `ct state` there is refused with "Protocol error".)

Chain `forward`, in order (each rule with a counter and a comment naming
it, which counters() reads):
  ips:<name>     the intrusion-prevention signature: a TCP or UDP payload
                 starting with `signature` is dropped, on every packet of
                 every connection (so it comes before `established`);
                 Suricata and Snort are not in this machine's Debian
                 sources, this raw-payload match stands in for them
  established    established and related: accept
  invalid        drop
  deny:<name>    a policy entry: source / destination (a security group,
                 through its address set, or any), protocol, port: drop
  allow          everything else: accept
Sets: `g_<group>` (type ipv4_addr, interval), one per security group the
controller has or the policy names; a group's name maps to a set name
with set_name().
"""
import re

TABLE = 'svc'
FAMILY = 'inet'
SIGNATURE = b'NSXL-IPS'           # the test signature's first bytes
PROTOS = ('tcp', 'udp', 'icmp', 'any')


def set_name(group):
    """An nftables set name for security group `group` (names are
    letters, digits, '.', '_', '-'; sets take letters, digits, '_')."""
    return 'g_' + re.sub(r'[^A-Za-z0-9_]', lambda m: '_%02x' % ord(m[0]),
                         group)


def check_policy(policy):
    """A policy ([{name, source, destination, protocol, port}], each
    endpoint 'any' or a group name) -> canonical; ValueError names the
    entry and field."""
    out = []
    if not isinstance(policy, list):
        raise ValueError('policy: a list of deny entries')
    for i, e in enumerate(policy):
        if not isinstance(e, dict) or not isinstance(e.get('name'), str) \
                or not re.match(r'^[A-Za-z0-9_.-]{1,40}$', e['name']):
            raise ValueError(f'policy[{i}].name: a word (letters, digits, '
                             "'_', '.', '-')")
        proto = e.get('protocol', 'any')
        if proto not in PROTOS:
            raise ValueError(f'policy[{i}].protocol: one of '
                             + ', '.join(PROTOS))
        port = e.get('port')
        if port is not None and (proto not in ('tcp', 'udp') or
                                 not isinstance(port, int) or
                                 not 1 <= port <= 65535):
            raise ValueError(f'policy[{i}].port: 1..65535, with tcp or udp')
        ends = {}
        for side in ('source', 'destination'):
            v = e.get(side, 'any')
            if not isinstance(v, str) or not v:
                raise ValueError(f"policy[{i}].{side}: 'any' or a security "
                                 'group name')
            ends[side] = v
        out.append({'name': e['name'], 'protocol': proto, 'port': port,
                    **ends})
    return out


def _members(cidrs):
    return ', '.join(c.split('/')[0] if c.endswith('/32') else c
                     for c in cidrs)


def ruleset(policy, groups, signature=SIGNATURE):
    """The whole table as nftables text (loaded in one transaction: the
    old table, if any, goes with it): `policy` from check_policy(),
    `groups` {security group: [CIDRs]} (the controller's, now)."""
    names = sorted(set(groups) | {e[s] for e in policy
                                  for s in ('source', 'destination')
                                  if e[s] != 'any'})
    lines = [f'table {FAMILY} {TABLE} {{']
    for g in names:
        elems = groups.get(g, [])
        lines += [f'  set {set_name(g)} {{', '    type ipv4_addr',
                  '    flags interval']
        if elems:
            lines.append(f'    elements = {{ {_members(elems)} }}')
        lines.append('  }')
    bits = len(signature) * 8
    sig = '0x' + signature.hex()
    lines += ['  chain forward {',
              '    type filter hook forward priority 0; policy accept;']
    for proto in ('tcp', 'udp'):
        lines.append(f'    meta l4proto {proto} @ih,0,{bits} {sig} counter '
                     f'drop comment "ips:{proto}"')
    lines += ['    ct state established,related counter accept '
              'comment "established"',
              '    ct state invalid counter drop comment "invalid"']
    for e in policy:
        m = []
        if e['source'] != 'any':
            m.append(f"ip saddr @{set_name(e['source'])}")
        if e['destination'] != 'any':
            m.append(f"ip daddr @{set_name(e['destination'])}")
        if e['protocol'] == 'icmp':
            m.append('ip protocol icmp')
        elif e['protocol'] != 'any':
            m.append(f"meta l4proto {e['protocol']}")
            if e['port'] is not None:
                m.append(f"{e['protocol']} dport {e['port']}")
        lines.append('    ' + ' '.join(m + ['counter drop',
                                         f'comment "deny:{e["name"]}"']))
    lines += ['    counter accept comment "allow"', '  }', '}']
    return '\n'.join(lines) + '\n'


def set_updates(old, new):
    """nftables commands (one transaction) taking the address sets from
    `old` to `new` ({group: [CIDRs]}): a changed set is flushed and filled
    again; a new group gets its set. [] when nothing changed."""
    cmds = []
    for g in sorted(new):
        if old.get(g) == new[g]:
            continue
        s = f'{FAMILY} {TABLE} {set_name(g)}'
        if g not in old:
            cmds.append(f'add set {s} {{ type ipv4_addr; flags interval; }}')
        cmds.append(f'flush set {s}')
        if new[g]:
            cmds.append(f'add element {s} {{ {_members(new[g])} }}')
    return cmds


def counters(listing):
    """{comment: packets} of the table's rules, from `nft -j list table`'s
    JSON (parsed)."""
    out = {}
    for item in listing.get('nftables', ()):
        rule = item.get('rule')
        if not rule or 'comment' not in rule:
            continue
        for expr in rule.get('expr', ()):
            if 'counter' in expr:
                out[rule['comment']] = expr['counter']['packets']
    return out


def set_elements(listing, group):
    """The addresses in `group`'s set, from `nft -j list set`'s JSON."""
    for item in listing.get('nftables', ()):
        s = item.get('set')
        if s and s.get('name') == set_name(group):
            return sorted(_element(e) for e in s.get('elem', ()))
    return None


def _element(e):
    if isinstance(e, dict) and 'prefix' in e:
        return f"{e['prefix']['addr']}/{e['prefix']['len']}"
    return f'{e}/32'
