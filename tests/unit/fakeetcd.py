"""An in-memory stand-in for the part of etcd3gw's client that
controllers.cluster uses: one global revision, keys with create/mod
revisions, conditional transactions, ranges by prefix, leases. `down`
makes every call fail as a member cut off from the majority does (the
client's timeout)."""
import base64


class Unreachable(Exception):
    pass


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


class FakeLease:
    def __init__(self, etcd, lease_id, ttl):
        self.etcd, self.id, self.ttl = etcd, lease_id, ttl

    def refresh(self):
        self.etcd.check()
        return self.ttl if self.id in self.etcd.leases else -1


class FakeEtcd:
    def __init__(self):
        self.revision = 1
        self.kv = {}              # key -> (value, create_rev, mod_rev, lease)
        self.leases = set()
        self.down = False
        self.puts = 0

    def check(self):
        if self.down:
            raise Unreachable('context deadline exceeded')

    def client(self, timeout_s=None):
        return self                   # connect(): one "client" per call

    def _put(self, key, value, lease=None):
        self.revision += 1
        old = self.kv.get(key)
        self.kv[key] = (value, old[1] if old else self.revision,
                        self.revision, lease)
        self.puts += 1

    def put(self, key, value, lease=None):
        self.check()
        self._put(_text(key), _text(value), lease and lease.id)
        return True

    def transaction(self, txn):
        self.check()
        ok = True
        for c in txn['compare']:
            key = base64.b64decode(c['key']).decode()
            have = self.kv.get(key)
            field = {'MOD': 2, 'CREATE': 1}[c['target']]
            now = have[field] if have else 0
            want = int(c.get('mod_revision', c.get('create_revision', 0)))
            ok = ok and now == want
        responses = []
        for op in txn['success' if ok else 'failure']:
            if 'request_range' in op:
                key = base64.b64decode(op['request_range']['key']).decode()
                have = self.kv.get(key)
                responses.append({'response_range': {'kvs': [{
                    'create_revision': str(have[1]),
                    'mod_revision': str(have[2])}] if have else []}})
                continue
            put = op['request_put']
            self._put(base64.b64decode(put['key']).decode(),
                      base64.b64decode(put['value']).decode())
            responses.append({'response_put': {}})
        out = {'header': {'revision': str(self.revision)},
               'responses': responses}
        if ok:                    # etcd's JSON leaves a false one out
            out['succeeded'] = True
        return out

    def get(self, key, metadata=False, range_end=None, sort_order=None,
            sort_target=None, min_create_revision=None, **_):
        self.check()
        if range_end is None:
            keys = [key] if key in self.kv else []
        else:
            keys = [k for k in self.kv if key <= k < range_end]
        if sort_target == 'create':
            keys.sort(key=lambda k: self.kv[k][1])
        else:
            keys.sort()
        out = []
        for k in keys:
            value, create, mod, _lease = self.kv[k]
            if min_create_revision and create < min_create_revision:
                continue
            out.append((value.encode(), {
                'key': k.encode(), 'create_revision': str(create),
                'mod_revision': str(mod), **({'lease': str(_lease)}
                                             if _lease else {})}))
        return out if metadata else [v for v, _ in out]

    def get_url(self, path):
        return path

    def post(self, url, json=None):
        self.check()
        if url == '/kv/lease/revoke':
            if json['ID'] not in self.leases:
                raise Unreachable('Not Found')
            self.expire(json['ID'])
            return {}
        if url == '/kv/range':                  # count_only, for the header
            return {'header': {'revision': str(self.revision)}}
        raise NotImplementedError(url)

    def lease(self, ttl):
        self.check()
        lease = FakeLease(self, len(self.leases) + 100, ttl)
        self.leases.add(lease.id)
        return lease

    def expire(self, lease_id):
        """The lease ran out: its keys go."""
        self.leases.discard(lease_id)
        for k in [k for k, v in self.kv.items() if v[3] == lease_id]:
            del self.kv[k]
            self.revision += 1
