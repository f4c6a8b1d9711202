"""Every change to the desired state as a write: an operation and its
arguments, applied to a Store (`apply`). The API applies each write at
once (one controller); the controller cluster (#13, docs/cluster.md) will
append writes to a replicated log and every node will `replay` that log
in order on its own Store: the Store's checks and its ids are
deterministic, so every node gives every write the same answer and ends
with the same state.

    apply(store, op, *args)             -> the write's result, or raises
                                           model.ApiError
    replay(store, log, applied=0)       -> (last revision applied,
                                           [(revision, result or error)])
"""
from .model import ApiError

# op -> (Store method, whether a list body is a bulk write: all or none)
OPS = {'create_ls': ('create_ls', True), 'update_ls': ('update_ls', False),
       'delete_ls': ('delete_ls', False), 'attach': ('attach', True),
       'request_move': ('request_move', False), 'detach': ('detach', False),
       'tag_port': ('tag_port', False),
       'connect_gateway': ('connect_gateway', True),
       'disconnect_gateway': ('disconnect_gateway', False),
       'locate': ('locate', False), 'unlocate': ('unlocate', False),
       'create_group': ('create_group', False),
       'update_group': ('update_group', False),
       'delete_group': ('delete_group', False),
       'create_rule': ('create_rule', False),
       'update_rule': ('update_rule', False),
       'delete_rule': ('delete_rule', False)}
OPS.update({f'{verb}_{kind}': (f'{verb}_{kind}', False)
            for kind in ('service_vm', 'steering_rule')
            for verb in ('create', 'update', 'delete')})


def apply(store, op, *args):
    """Write `op` with `args` on `store` -> what the Store answers (the
    created row, the rows of a bulk write...); a refused write raises
    model.ApiError and changes nothing."""
    if op not in OPS:
        raise ValueError(f'op: {op!r} is not a write; one of '
                         f"{', '.join(sorted(OPS))}")
    method, bulk = OPS[op]
    fn = getattr(store, method)
    if bulk and args and isinstance(args[-1], list):
        head = args[:-1]
        return store.bulk(lambda body: fn(*head, body), args[-1])
    return fn(*args)


def replay(store, log, applied=0):
    """Apply the entries of `log` ([(revision, op, args)]) newer than
    revision `applied`, in revision order -> (the last revision applied,
    [(revision, result, or {'error': the refusal's body})])."""
    out = []
    for rev, op, args in sorted(log, key=lambda e: e[0]):
        if rev <= applied:
            continue
        try:
            out.append((rev, apply(store, op, *args)))
        except ApiError as exc:
            out.append((rev, {'error': exc.body()}))
        applied = rev
    return applied, out
