"""The service VM's agent (driver): loads the firewall's ruleset at once
(the filter works before the controller answers), then follows the
controller's security groups with a long poll and updates the address
sets in one nftables transaction per change. Logs one line per event,
epoch first."""
import json
import ssl
import time

from controllers.service import ApiSession

from . import policy as pol

WAIT_S = 25                     # a long poll's longest wait
RETRY_S = 0.5                   # after a failed request


class Agent:
    def __init__(self, url, ca, entries, log, nft=None):
        self.entries = pol.check_policy(entries)
        ctx = ssl.create_default_context(cafile=ca) if ca else None
        self.api = ApiSession(url, None, ctx)
        self.log = log
        if nft is None:
            import nftables
            nft = nftables.Nftables()
        self.nft = nft
        self.groups, self.generation = {}, -1

    def _nft(self, text):
        rc, _out, err = self.nft.cmd(text)
        if rc != 0:
            raise RuntimeError(f'nft: {err.strip()}')

    def load(self):
        """The whole table, with the address sets known now."""
        self._nft(f'table {pol.FAMILY} {pol.TABLE}\n'
                  f'delete table {pol.FAMILY} {pol.TABLE}\n'
                  + pol.ruleset(self.entries, self.groups))
        self.log(f'{time.time():.3f} ruleset loaded: '
                 f'{len(self.entries)} policy entries, '
                 f'{len(self.groups)} address sets')

    def poll(self, wait):
        """One (long) poll; applies a change -> whether one came."""
        status, body = self.api.request(
            'GET', f'/security-groups/addresses?after={self.generation}'
            f'&wait={wait}')
        if status != 200:
            raise RuntimeError(f'GET /security-groups/addresses: {status} '
                               f'{body}')
        self.generation = body['generation']
        cmds = pol.set_updates(self.groups, body['groups'])
        if not cmds:
            return False
        t0 = time.monotonic()
        self._nft('\n'.join(cmds))
        changed = sorted(g for g in body['groups']
                         if self.groups.get(g) != body['groups'][g])
        self.groups = body['groups']
        self.log(f'{time.time():.3f} address sets updated: '
                 f"{', '.join(changed)} (generation {self.generation}, "
                 f'{(time.monotonic() - t0) * 1000:.1f} ms)')
        return True

    def run(self):
        self.load()
        while True:
            try:
                self.poll(WAIT_S if self.generation >= 0 else 0)
            except (OSError, RuntimeError, ValueError) as exc:
                self.log(f'{time.time():.3f} controller not answering: '
                         f'{exc}')
                self.api.close()
                time.sleep(RETRY_S)


def read_policy(text):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f'--policy: not JSON ({exc})') from None
