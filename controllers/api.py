"""Northbound NSX-style REST API (FastAPI; OpenAPI at /docs).

Reads and writes desired state only through controllers.model.Store; every
bad request gets a 4xx JSON error {"error": {"field", "message"}} naming the
field and the fix, and changes nothing: a bad value in the body or the path
(400), an unknown id (404), a conflict (409), an unknown path (404, field
"path") or method (405, field "method"), a body over MAX_BODY bytes (413),
a write without the lab's token (401) or with another (403), a write to a
controller node cut off from its cluster's majority (503, field
"cluster": nothing changed, send it to another node).
`on_change()` is called after each committed write so the controller
reconciles. `status()` (optional) tells how the controller's device
sessions are doing (GET /hardware-vteps).

Writes (POST, PUT, DELETE) need `Authorization: Bearer TOKEN` when the app
is made with a token (the lab makes one at boot, controllers.service);
reads are open to whoever reaches the management network.
"""
import asyncio
import hmac
import json
import os
import threading
import time

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from . import dfw, model, runs, writes
from .model import ApiError

PREFIX = '/api/v1'
WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'web')
MAP_EVERY_S = 0.25      # the map's event stream looks for a change this often
KEEPALIVE_S = 15.0      # and says something at least this often
MAX_BODY = 4 * 1024 * 1024   # bytes: a 20,000-item bulk request is ~1.5 MB

_LS = {'type': 'object', 'additionalProperties': False,
       'properties': {
           'name': {'type': 'string', 'pattern': model.NAME_RE.pattern},
           'vni': {'type': 'integer', 'minimum': 1, 'maximum': 16777215},
           'replication_mode': {'enum': list(model.REPLICATION_MODES)},
           'subnet': {'type': ['string', 'null'],
                      'description': 'a CIDR network, e.g. 10.1.0.0/16'}}}


_ENDPOINT = {'description': '"any", {"group": NAME} or {"cidr": '
             '"10.1.0.0/16"}',
             'oneOf': [{'enum': ['any']},
                       {'type': 'object', 'additionalProperties': False,
                        'required': ['group'],
                        'properties': {'group': {'type': 'string'}}},
                       {'type': 'object', 'additionalProperties': False,
                        'required': ['cidr'],
                        'properties': {'cidr': {'type': 'string'}}}]}
_TAGS = {'type': 'array', 'maxItems': model.MAX_TAGS,
         'items': {'type': 'string', 'pattern': model.TAG_RE.pattern},
         'description': 'tags like "tier=web": a group holds every VM port '
         'that carries one of its tags'}
_GROUP = {'type': 'object', 'additionalProperties': False,
          'required': ['name'],
          'properties': {
              'name': {'type': 'string', 'pattern': model.NAME_RE.pattern},
              'vms': {'type': 'array', 'items': {'type': 'string'},
                      'description': 'VM names'},
              'logical_switches': {'type': 'array',
                                   'items': {'type': 'string'},
                                   'description': 'every VM port of these '
                                   'logical switches (names)'},
              'tags': _TAGS}}
_RULE = {'type': 'object', 'additionalProperties': False,
         'required': ['name', 'priority', 'action'],
         'properties': {
             'name': {'type': 'string', 'pattern': model.NAME_RE.pattern},
             'priority': {'type': 'integer', 'minimum': 1, 'maximum': 10000,
                          'description': 'the lowest is checked first'},
             'source': _ENDPOINT, 'destination': _ENDPOINT,
             'protocol': {'enum': ['any', 'tcp', 'udp', 'icmp']},
             'port': {'type': ['integer', 'null'], 'minimum': 1,
                      'maximum': 65535,
                      'description': 'destination port (tcp, udp)'},
             'action': {'enum': ['allow', 'drop', 'reject']},
             'applied_to': {'type': ['string', 'null'],
                            'description': 'a logical switch name; null: '
                            'every VM port'}}}
_STEER = {'type': 'object', 'additionalProperties': False,
          'required': ['name', 'priority', 'on_failure'],
          'properties': dict(
              {k: v for k, v in _RULE['properties'].items()
               if k != 'action'},
              on_failure={'enum': ['fail-open', 'fail-closed'],
                          'description': 'while the service VM is down: '
                          'pass unsteered, or drop'})}
_SVM = {'type': 'object', 'additionalProperties': False,
        'required': ['name', 'transport_node', 'in_port', 'out_port'],
        'properties': {
            'name': {'type': 'string', 'pattern': model.NAME_RE.pattern},
            'transport_node': {'type': 'string',
                               'description': 'the hypervisor it runs on'},
            'in_port': {'type': 'integer', 'minimum': 1, 'maximum': 0xfeff,
                        'description': "its VM-side interface's OpenFlow "
                        'port on br-int'},
            'out_port': {'type': 'integer', 'minimum': 1,
                         'maximum': 0xfeff,
                         'description': 'its network-side interface\'s'}}}


def _names(names, what):
    """A string from the lab's inventory: listed in the OpenAPI document,
    so /docs shows the choices."""
    names = sorted(names)
    return {'type': 'string', 'description': what,
            **({'enum': names} if names else {})}


def _bodies(store):
    """OpenAPI schemas of the port, move and gateway-connection bodies,
    with this lab's VMs, hypervisors, gateways and their ports."""
    nodes = store.nodes
    gws = {n: p for n, p in nodes.items()
           if p.get('role') in ('sw_gateway', 'hw_vtep')}
    port = {'type': 'object', 'additionalProperties': False,
            'required': ['attachment'],
            'properties': {
                'attachment': _names(store.inventory, 'a VM of the lab'),
                'mac': {'type': 'string', 'pattern': model.MAC_RE.pattern,
                        'description': 'unicast; default: the VM\'s'},
                'ip': {'type': 'string', 'description': 'e.g. 10.1.0.11/16,'
                       " in the switch's subnet; default: the VM's"},
                'tags': _TAGS}}
    move = {'type': 'object', 'additionalProperties': False,
            'required': ['transport_node'],
            'properties': {'transport_node': _names(
                [n for n, p in nodes.items() if p.get('role') ==
                 'hypervisor'], 'the destination hypervisor')}}
    gwc = {'type': 'object', 'additionalProperties': False,
           'required': ['ls_id', 'gateway', 'port'],
           'properties': {
               'ls_id': {'type': 'integer', 'minimum': 1,
                         'maximum': model.MAX_ID},
               'gateway': _names(gws, 'an L2 gateway (GET /l2-gateways)'),
               'port': _names({q for p in gws.values()
                               for q in p.get('ports', ())},
                              "a port of that gateway"),
               'vlan': {'type': 'integer', 'minimum': 0, 'maximum': 4094,
                        'description': '0: untagged'}}}
    return port, move, gwc


def _body(schema, bulk=False):
    """OpenAPI for a JSON body the handler parses itself (the Store
    validates it, with the project's messages)."""
    if bulk:
        schema = {'oneOf': [schema, {'type': 'array', 'minItems': 1,
                                     'maxItems': model.Store.MAX_BULK,
                                     'items': schema}]}
    return {'requestBody': {'required': True, 'content': {
        'application/json': {'schema': schema}}}}


def _fw_routes(app, path, kind, schema, what, store, commit, do, changed,
               on_change, write, body_of):
    """GET (list, one), POST, PUT, DELETE of one kind of the firewall's
    objects (`kind` group, rule, service_vm, steering_rule: the Store's
    list_/get_/create_/update_/delete_ methods and writes)."""
    one = PREFIX + path + '/{obj_id}'
    name = kind.replace('_', ' ').capitalize()

    def list_all():
        return getattr(store, f'list_{kind}s')()

    def get_one(obj_id: int = _id('obj_id')):
        return getattr(store, f'get_{kind}')(obj_id)

    async def create(request: Request):
        return changed(await do(f'create_{kind}', await body_of(request)))

    async def update(request: Request, obj_id: int = _id('obj_id')):
        return changed(await do(f'update_{kind}', obj_id,
                                 await body_of(request)))

    def delete(obj_id: int = _id('obj_id')):
        commit(f'delete_{kind}', obj_id)
        on_change()
    app.get(PREFIX + path, summary=f'List {what}',
            operation_id=f'list_{kind}s')(list_all)
    app.get(one, summary=f'One {kind}', operation_id=f'get_{kind}')(get_one)
    app.post(PREFIX + path, status_code=201, dependencies=write,
             summary=f'{name}: create', operation_id=f'create_{kind}',
             openapi_extra=_body(schema))(create)
    app.put(one, dependencies=write, summary=f'{name}: replace',
            operation_id=f'update_{kind}', openapi_extra=_body(schema))(update)
    app.delete(one, status_code=204, dependencies=write,
               summary=f'{name}: delete',
               operation_id=f'delete_{kind}')(delete)


def _id(name):
    return Path(ge=1, le=model.MAX_ID, alias=name)


def create_app(store, on_change=lambda: None, status=None, pushes=None,
               learned=None, token=None, commit=None, cluster=None,
               lab_map=None, results_dir=None, node_tables=None,
               port_counters=None, node_flows=None):
    """`commit(op, *args)`: how a write is made (default: applied to
    `store` at once; a cluster node commits it through etcd first,
    controllers.cluster); `cluster()`: this node's view of the cluster
    (GET /cluster), None for a single controller; `lab_map()`: the lab's
    map (controllers.labmap), None when the controller has no plan;
    `results_dir`: the project's results/ (the web view's results page);
    `node_tables(name)`: a device's tables asked of it now
    (controllers.tables; None without a session), `port_counters()`: every
    switch's port counters {node: [...]}; both None without a plan;
    `node_flows(name)`: a switch's flow statistics now (controllers.app
    rows; None: no answer), for the firewall's packets."""
    if commit is None:
        def commit(op, *args):
            return writes.apply(store, op, *args)

    async def do(op, *args):         # a cluster commit waits on etcd
        return await run_in_threadpool(commit, op, *args)
    app = FastAPI(title='nsx-l2gw-lab controller', version='1',
                  description='NSX-style API: transport nodes, logical '
                  'switches, logical ports. Writes need the lab\'s token '
                  '(Authorization: Bearer ...; `./run.py cli` shows it).')
    bearer = HTTPBearer(auto_error=False, description='the lab\'s API '
                        'token, written at boot to <records>/controller/'
                        'api-token')

    def authorized(creds: HTTPAuthorizationCredentials = Depends(bearer)):
        if token is None:
            return
        if creds is None:
            raise ApiError(401, 'authorization', 'writes need the lab\'s '
                           'token: Authorization: Bearer TOKEN (`./run.py '
                           'cli` prints it; the lab keeps it in '
                           '<records>/controller/api-token)')
        if not hmac.compare_digest(creds.credentials.encode(),
                                   token.encode()):
            raise ApiError(403, 'authorization', 'this token is not the '
                           "lab's; use the one in <records>/controller/"
                           'api-token')
    write = [Depends(authorized)]
    port_body, move_body, gwc_body = _bodies(store)

    @app.exception_handler(ApiError)
    async def _api_error(_request, exc):
        headers = {'www-authenticate': 'Bearer'} if exc.status == 401 \
            else None
        return JSONResponse(status_code=exc.status, content=exc.body(),
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_param(_request, exc):
        err = exc.errors()[0]
        loc = [str(x) for x in err.get('loc', ())]
        field = loc[-1] if loc else 'request'
        where = loc[0] if loc else 'request'
        hint = f'an id is an integer 1..{model.MAX_ID}' if where == 'path' \
            else 'see /docs'
        return JSONResponse(status_code=400, content=ApiError(
            400, field, f"{err.get('msg', 'bad value')} ({where} parameter "
            f'{field}: {hint})').body())

    @app.exception_handler(HTTPException)
    async def _http_error(_request, exc):
        field, message = {
            404: ('path', 'no such API path; the paths are listed at /docs'),
            405: ('method', 'this path does not take this method; see '
                  '/docs')}.get(exc.status_code, ('request', str(exc.detail)))
        return JSONResponse(status_code=exc.status_code, headers=getattr(
            exc, 'headers', None), content=ApiError(
                exc.status_code, field, message).body())

    @app.middleware('http')
    async def _stale(request, call_next):
        resp = await call_next(request)
        if cluster is not None:
            gone = cluster()['cut_off_s']
            if gone:
                resp.headers['x-nsx-stale'] = (
                    f'this controller node has not reached the cluster\'s '
                    f'majority for {gone:.1f} s: what it answers may be '
                    'out of date')
        return resp

    @app.middleware('http')
    async def _limit_size(request, call_next):
        length = request.headers.get('content-length', '0')
        if not length.isdigit() or int(length) > MAX_BODY:
            return JSONResponse(status_code=413, content=ApiError(
                413, 'body', f'at most {MAX_BODY} bytes per request (got '
                f'{length}); split a bulk request').body())
        return await call_next(request)

    async def body_of(request):
        chunks, size = [], 0
        async for chunk in request.stream():   # chunked: no content-length
            size += len(chunk)
            if size > MAX_BODY:
                raise ApiError(413, 'body', f'at most {MAX_BODY} bytes per '
                               'request; split a bulk request')
            chunks.append(chunk)
        try:
            return json.loads(b''.join(chunks) or b'null')
        except (ValueError, RecursionError):
            raise ApiError(400, 'body', 'not valid JSON (UTF-8, nested at '
                           'most a few hundred levels)') from None

    def changed(result):
        on_change()
        return result

    def with_roles(name, node, assignment):
        out = {'name': name, **node}
        if cluster is not None:
            r = assignment.get(name, {})
            out['controller'] = {'active': r.get('active'),
                                 'standby': r.get('standby')}
        return out

    def assignment():
        return cluster()['assignment'] if cluster is not None else {}

    @app.get(PREFIX + '/transport-nodes')
    def transport_nodes():
        """Every transport node and hardware VTEP of the lab; in a
        controller cluster each says which controller node drives it
        (`controller`: {active, standby})."""
        roles = assignment()
        return [with_roles(n, p, roles)
                for n, p in sorted(store.nodes.items())]

    def known_node(name):
        if name not in store.nodes:
            raise ApiError(404, 'name', f'no transport node {name!r}; GET '
                           '/transport-nodes lists them')
        return name

    node_name = Path(pattern=r'^[a-z][a-z0-9]{0,9}$', max_length=10)

    @app.get(PREFIX + '/transport-nodes/{name}')
    def transport_node(name: str = node_name):
        return with_roles(known_node(name), store.nodes[name], assignment())

    @app.get(PREFIX + '/transport-nodes/{name}/tables')
    def transport_node_tables(name: str = node_name):
        """What the device holds now, asked of it (controllers.tables): a
        switch's br-int flows with counters (named: ports after what is
        cabled there, VNIs after logical switches, MACs after hosts), its
        MAC table and port counters (OpenFlow statistics); a hardware
        VTEP's bindings, MACs, flooding lists and tunnels' BFD state (its
        vtep database). 503 while the controller has no session to it."""
        known_node(name)
        if node_tables is None:
            raise no_map()
        got = node_tables(name)
        if got is None:
            raise ApiError(503, 'name', f'{name} did not answer: this '
                           'controller has no session to it now (or it '
                           'took over 2 s); GET /status shows its sessions')
        return got

    @app.get(PREFIX + '/transport-nodes/{name}/firewall')
    def transport_node_firewall(name: str = node_name):
        """The distributed firewall at a hypervisor's VM ports
        (controllers.dfw.node_view): the rules resolved in checking order
        and, per port, those that meet it each way with the packets each
        passed or dropped there (read from the switch now; null when it
        did not answer), established, invalid and default likewise."""
        role = store.nodes[known_node(name)]['role']
        if role != 'hypervisor':
            raise ApiError(400, 'name', f'{name} is a {role}: the '
                           'distributed firewall runs at VM ports, on '
                           'hypervisors (GET /transport-nodes lists the '
                           'nodes and their roles)')
        raw = node_flows(name) if node_flows is not None else None
        view = dfw.node_view(store.desired(), name, raw)
        view['counters'] = 'read from the switch now' if raw is not None \
            else 'unknown: the switch did not answer (GET /status shows ' \
            'the sessions)'
        return view

    @app.get(PREFIX + '/cluster')
    def cluster_view():
        """The controller cluster as this node sees it: node (this one),
        members (whose lease runs), applied_revision (the last entry of the
        replicated log applied here), assignment ({device: {active,
        standby}}), assignment_generation (its etcd revision: the OpenFlow
        role requests' generation id), assigned_at (Unix time this node
        took it), mine (this node's roles), lease_s,
        cut_off_s (how long this node has not reached the majority: 0 when
        it has; then it refuses writes with 503 and its reads carry
        `X-NSX-Stale`), counts. A single controller: {nodes: 1}."""
        if cluster is None:
            return {'nodes': 1, 'members': [], 'assignment': {}}
        return cluster()

    @app.get(PREFIX + '/logical-switches')
    def list_ls():
        return store.list_ls()

    @app.post(PREFIX + '/logical-switches', status_code=201,
              dependencies=write, openapi_extra=_body(
                  dict(_LS, required=['name', 'vni']), bulk=True))
    async def create_ls(request: Request):     # a list: bulk, all or none
        return changed(await do('create_ls', await body_of(request)))

    @app.get(PREFIX + '/logical-switches/{ls_id}')
    def get_ls(ls_id: int = _id('ls_id')):
        return store.get_ls(ls_id)

    @app.put(PREFIX + '/logical-switches/{ls_id}', dependencies=write,
             openapi_extra=_body(_LS))
    async def update_ls(request: Request, ls_id: int = _id('ls_id')):
        return changed(await do('update_ls', ls_id,
                                 await body_of(request)))

    @app.delete(PREFIX + '/logical-switches/{ls_id}', status_code=204,
                dependencies=write)
    def delete_ls(ls_id: int = _id('ls_id')):
        commit('delete_ls', ls_id)
        on_change()

    @app.get(PREFIX + '/logical-switches/{ls_id}/ports')
    def list_ports(ls_id: int = _id('ls_id')):
        return store.list_ports(ls_id)

    @app.post(PREFIX + '/logical-switches/{ls_id}/ports', status_code=201,
              dependencies=write, openapi_extra=_body(port_body, bulk=True))
    async def attach(request: Request, ls_id: int = _id('ls_id')):
        return changed(await do('attach', ls_id, await body_of(request)))

    @app.post(PREFIX + '/logical-ports/{port_id}/move', status_code=202,
              dependencies=write, openapi_extra=_body(move_body))
    async def move(request: Request, port_id: int = _id('port_id')):
        """A vMotion starts: body {"transport_node": "hv2"}. The port is
        bound there as soon as the destination hypervisor announces the
        VM's VIF in its OVSDB (external_ids:iface-id), and only there
        until then: a VIF of the VM seen on a third hypervisor is not
        bound. 202: the port, with `requested_node` (null again once the
        move is done)."""
        return await do('request_move', port_id, await body_of(request))

    @app.put(PREFIX + '/logical-ports/{port_id}/tags', dependencies=write,
             openapi_extra=_body({'type': 'object', 'required': ['tags'],
                                  'additionalProperties': False,
                                  'properties': {'tags': _TAGS}}))
    async def tag(request: Request, port_id: int = _id('port_id')):
        """Replace the port's tags: body {"tags": ["tier=web"]}. Security
        groups that select by tag follow at once (the firewall's flows,
        a service VM's address sets). -> the port."""
        return changed(await do('tag_port', port_id, await body_of(request)))

    @app.delete(PREFIX + '/logical-ports/{port_id}', status_code=204,
                dependencies=write)
    def detach(port_id: int = _id('port_id')):
        commit('detach', port_id)
        on_change()

    @app.get(PREFIX + '/l2-gateways')
    def l2_gateways():
        """Software gateways and hardware VTEPs: name, role, physical
        ports, and `macs`: the physical MACs learned behind it that the
        controller installs on the hypervisors ([{vni, mac}]; a software
        gateway reports them while it is active, a hardware VTEP in its
        Ucast_Macs_Local)."""
        macs = learned() if learned is not None else {}
        return [{'name': n, 'role': p['role'],
                 'ports': sorted(p.get('ports', {})),
                 'macs': [{'vni': v, 'mac': m} for v, m in macs.get(n, [])]}
                for n, p in sorted(store.nodes.items())
                if p['role'] in ('sw_gateway', 'hw_vtep')]

    @app.get(PREFIX + '/hardware-vteps')
    def hardware_vteps():
        """The controller's OVSDB session to each hardware VTEP's
        hardware_vtep database, one item per VTEP:

        - name: the VTEP (its Physical_Switch has the same name);
        - database: the OVSDB remote, ssl:MGMT_IP:6640 (tcp: without TLS);
        - connected: the session is up and its replica is current;
        - since: when `connected` last changed (Unix time, seconds);
        - reconnects: how many times the session came back after a loss;
        - last_error: the last problem seen (lost session, failed
          transaction, a bug), or null;
        - last_commit: the last transaction {status (success, try again,
          error...), ms (from commit to its outcome), ops (plan operations),
          at (Unix time)}, or null;
        - pending_ops: how many changes the last comparison of the VTEP's
          tables with what the controller wants found (0: in step, no
          stale or missing row; null before the first);
        - counts: rows in the VTEP's database now: logical_switches,
          bindings (port/VLAN -> logical switch), local_macs (learned by
          the VTEP: Ucast_Macs_Local), remote_macs (written by the
          controller: Ucast_Macs_Remote).

        Empty when the controller follows no hardware VTEP.
        """
        return status()['hardware_vteps'] if status is not None else []

    def no_map():
        return ApiError(404, 'map', 'this controller was started without a '
                        'lab plan (--plan), so it has no map')

    @app.get(PREFIX + '/map')
    def the_map(counters: bool = False):
        """The lab's map, what Network Director correlates (whitepaper
        figures 24-25): underlay (switches, cables, eBGP sessions on a
        Clos, the VCF pod VTEP and its members), vteps (every transport
        node: tunnel IP, leaf, the service nodes an edge floods through
        and the one in use, its active and standby controller node in a
        cluster), tunnels (every pair of transport nodes: BFD runs on it,
        state up/down where the controller follows it, else null),
        logical_switches (VNI, member VTEPs, ports, gateway bindings VLAN
        <-> VNI), endpoints (every VM and server: logical switch, IP, MAC,
        where it sits: hypervisor and port, hardware VTEP port, VCF pod
        port or physical segment VLAN), learned_macs (MACs gateways
        reported), not_reported (what no device reports to the
        controller yet). With `counters=true` the switches are asked for
        their port counters first (`counters`: {node: [{port, name,
        rx/tx packets, dropped, errors}]}, OpenFlow statistics; up to
        2 s). `./run.py map` prints it."""
        if lab_map is None:
            raise no_map()
        m = lab_map()
        if counters and port_counters is not None:
            m['counters'] = port_counters()
        return m

    @app.get(PREFIX + '/status')
    def controller_status():
        """How the controller's device sessions are doing:

        - switches: {node: its br-int's OpenFlow session: connected, since
          (Unix time of the last connect or loss), connects, passes
          (reconciliations), flows_added, flows_deleted, group_mods (sent
          since the controller started), flows (installed after the last
          pass; null until the first), last_pass, last_full_pass (the
          last pass over the whole switch: after a connect, or when this
          node became its master), rejects_sent (answers to the senders
          of packets a firewall reject rule stopped)};
        - hardware_vteps: as GET /hardware-vteps;
        - node_ovsdb: the controller's session to each hypervisor's and
          gateway's own OVSDB ({nodes: {node: {connected, since,
          reconnects}}, loop_restarts});
        - openflow_errors: error messages the switches sent;
        - openflow_tls_refused: TLS sessions the OpenFlow listener refused
          ({count, last: [{at, address, node (null: not a lab node),
          reason}]}, the last 20).
        """
        if status is None:
            return {'switches': {}, 'hardware_vteps': [],
                    'node_ovsdb': {'nodes': {}, 'loop_restarts': 0},
                    'openflow_errors': 0,
                    'openflow_tls_refused': {'count': 0, 'last': []}}
        return status()

    @app.get(PREFIX + '/pushes')
    def list_pushes(since: int = Query(0, ge=0)):
        """What the controller pushed to the switches for each change of
        the desired state (an API write, a VIF seen on a hypervisor), and
        when each switch confirmed it:

        - generation: the store's change counter now;
        - pushes: [{gen: the change reconciled (the pass covered every
          change up to it), node: the transport node, msgs: OpenFlow
          messages (flow and group mods) sent to it, sent: when the
          controller had sent them and a barrier, acked: when the switch
          answered the barrier (Unix time, s)}] for
          gen > since, oldest first.
        """
        if pushes is None:
            return {'generation': store.generation, 'pushes': []}
        return pushes(since)

    @app.get(PREFIX + '/gateway-connections')
    def list_connections():
        return store.list_connections()

    @app.post(PREFIX + '/gateway-connections', status_code=201,
              dependencies=write, openapi_extra=_body(gwc_body, bulk=True))
    async def connect(request: Request):
        return changed(await do('connect_gateway', await body_of(request)))

    @app.delete(PREFIX + '/gateway-connections/{conn_id}', status_code=204,
                dependencies=write)
    def disconnect(conn_id: int = _id('conn_id')):
        commit('disconnect_gateway', conn_id)
        on_change()

    # -- the distributed firewall (controllers.dfw) --------------------
    @app.get(PREFIX + '/security-groups/addresses', include_in_schema=False)
    async def group_addresses(after: int = Query(-1, ge=-1),
                              wait: float = Query(0.0, ge=0, le=30)):
        """Every security group's addresses ({generation, groups: {name:
        [/32s]}}), what a partner firewall's address groups follow
        (devices.servicevm). With `after`=a generation and `wait` > 0,
        the answer waits up to `wait` s for the desired state to change
        past it (a long poll, woken by the change's commit: an agent
        learns of it at once without asking again and again). Not in the OpenAPI document,
        like /map/events: a request that may take `wait` s to answer is
        no fuzzing target."""
        if wait and store.generation == after:   # woken by the commit
            await run_in_threadpool(store.wait_change, after, wait)
        gen = store.generation
        groups = await run_in_threadpool(
            lambda: dfw.group_addresses(store.desired()))
        return {'generation': gen, 'groups': groups}

    for path, kind, schema, what in (
            ('/security-groups', 'group', _GROUP, 'security groups: '
             'members by VM, logical switch or port tag'),
            ('/firewall-rules', 'rule', _RULE, 'distributed firewall rules, '
             'checked in priority order at every VM port they apply to'),
            ('/service-vms', 'service_vm', _SVM, 'service VMs (partner '
             'firewalls), one per hypervisor'),
            ('/steering-rules', 'steering_rule', _STEER, 'steering rules: '
             "traffic redirected through its hypervisor's service VM")):
        _fw_routes(app, path, kind, schema, what, store, commit, do,
                   changed, on_change, write, body_of)

    shared, shared_lock = {'at': None, 'text': None}, threading.Lock()

    def map_text():
        """The map as JSON text, built and serialized (in a worker
        thread) at most once per MAP_EVERY_S however many browsers follow
        it."""
        with shared_lock:
            now = time.monotonic()
            if shared['at'] is None or now - shared['at'] >= \
                    MAP_EVERY_S * 0.8:
                shared['text'] = json.dumps(lab_map(), sort_keys=True)
                shared['at'] = now
            return shared['text']

    @app.get(PREFIX + '/map/events', include_in_schema=False)
    async def map_events(request: Request):
        """Server-sent events: the whole map (GET /map) at once, then
        again within MAP_EVERY_S of each change (the web view's live
        updates); a comment every KEEPALIVE_S when nothing changes."""
        if lab_map is None:
            raise no_map()

        async def stream():
            last, quiet = None, 0.0
            while not await request.is_disconnected():
                text = await run_in_threadpool(map_text)
                if text != last:
                    last, quiet = text, 0.0
                    yield f'data: {text}\n\n'
                elif quiet >= KEEPALIVE_S:
                    quiet = 0.0
                    yield ': nothing changed\n\n'
                await asyncio.sleep(MAP_EVERY_S)
                quiet += MAP_EVERY_S
        return StreamingResponse(stream(), media_type='text/event-stream',
                                 headers={'cache-control': 'no-cache'})

    @app.get(PREFIX + '/results')
    def list_results(limit: int = Query(200, ge=1, le=5000)):
        """The runs in results/ (scenarios, benchmarks, demos), newest
        first: runs [{name, stamp (UTC), passed, topology, files (shown
        under /results/NAME/STAMP/)}], report (the summary of
        `./run.py report`, under /results/), total."""
        if results_dir is None:
            return {'runs': [], 'report': [], 'total': 0}
        return runs.runs(results_dir, limit)

    # the web view (controllers/web): the map drawn, live
    @app.get('/', include_in_schema=False)
    def home():
        return RedirectResponse('/ui/')

    app.mount('/ui', StaticFiles(directory=WEB, html=True), name='ui')

    @app.get('/results/{path:path}', include_in_schema=False)
    def result_file(path: str):
        """A file of a run (plots, transcripts, result.json, logs):
        only those kinds (runs.SHOWN), never as HTML."""
        full = runs.shown(results_dir, path) if results_dir else None
        if full is None:
            raise ApiError(404, 'path', 'no such result file (the web view '
                           'shows ' + ', '.join(runs.SHOWN) + ' files of '
                           'results/)')
        kind = 'image/png' if full.endswith('.png') else \
            'application/json' if full.endswith('.json') else 'text/plain'
        return FileResponse(full, media_type=kind, headers={
            'x-content-type-options': 'nosniff'})
    return app
