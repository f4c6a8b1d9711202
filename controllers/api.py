"""Northbound NSX-style REST API (FastAPI; OpenAPI at /docs).

Reads and writes desired state only through controllers.model.Store; every
bad request gets a 4xx JSON error {"error": {"field", "message"}} naming the
field and the fix, and changes nothing. `on_change()` is called after each
committed write so the controller reconciles. `status()` (optional) tells
how the controller's device sessions are doing (GET /hardware-vteps).
"""
import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .model import ApiError

PREFIX = '/api/v1'


def create_app(store, on_change=lambda: None, status=None, pushes=None,
               learned=None):
    app = FastAPI(title='nsx-l2gw-lab controller', version='1',
                  description='NSX-style API: transport nodes, logical '
                  'switches, logical ports.')

    @app.exception_handler(ApiError)
    async def _api_error(_request, exc):
        return JSONResponse(status_code=exc.status, content=exc.body())

    async def body_of(request):
        try:
            return json.loads(await request.body() or b'null')
        except ValueError:
            raise ApiError(400, 'body', 'not valid JSON') from None

    def changed(result):
        on_change()
        return result

    @app.get(PREFIX + '/transport-nodes')
    def transport_nodes():
        return [{'name': n, **p} for n, p in sorted(store.nodes.items())]

    @app.get(PREFIX + '/logical-switches')
    def list_ls():
        return store.list_ls()

    @app.post(PREFIX + '/logical-switches', status_code=201)
    async def create_ls(request: Request):
        body = await body_of(request)
        if isinstance(body, list):               # bulk: all or nothing
            return changed(store.bulk(store.create_ls, body))
        return changed(store.create_ls(body))

    @app.get(PREFIX + '/logical-switches/{ls_id}')
    def get_ls(ls_id: int):
        return store.get_ls(ls_id)

    @app.put(PREFIX + '/logical-switches/{ls_id}')
    async def update_ls(ls_id: int, request: Request):
        return changed(store.update_ls(ls_id, await body_of(request)))

    @app.delete(PREFIX + '/logical-switches/{ls_id}', status_code=204)
    def delete_ls(ls_id: int):
        store.delete_ls(ls_id)
        on_change()

    @app.get(PREFIX + '/logical-switches/{ls_id}/ports')
    def list_ports(ls_id: int):
        return store.list_ports(ls_id)

    @app.post(PREFIX + '/logical-switches/{ls_id}/ports', status_code=201)
    async def attach(ls_id: int, request: Request):
        body = await body_of(request)
        if isinstance(body, list):               # bulk: all or nothing
            return changed(store.bulk(lambda b: store.attach(ls_id, b), body))
        return changed(store.attach(ls_id, body))

    @app.post(PREFIX + '/logical-ports/{port_id}/move', status_code=202)
    async def move(port_id: int, request: Request):
        """A vMotion starts: body {"transport_node": "hv2"}. The port is
        bound there as soon as the destination hypervisor announces the
        VM's VIF in its OVSDB (external_ids:iface-id), and only there
        until then: a VIF of the VM seen on a third hypervisor is not
        bound. 202: the port, with `requested_node` (null again once the
        move is done)."""
        return store.request_move(port_id, await body_of(request))

    @app.delete(PREFIX + '/logical-ports/{port_id}', status_code=204)
    def detach(port_id: int):
        store.detach(port_id)
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
        - database: the OVSDB remote, tcp:MGMT_IP:6640;
        - connected: the session is up and its replica is current;
        - since: when `connected` last changed (Unix time, seconds);
        - reconnects: how many times the session came back after a loss;
        - last_error: the last problem seen (lost session, failed
          transaction, a bug), or null;
        - last_commit: the last transaction {status (success, try again,
          error...), ms (from commit to its outcome), ops (plan operations),
          at (Unix time)}, or null;
        - counts: rows in the VTEP's database now: logical_switches,
          bindings (port/VLAN -> logical switch), local_macs (learned by
          the VTEP: Ucast_Macs_Local), remote_macs (written by the
          controller: Ucast_Macs_Remote).

        Empty when the controller follows no hardware VTEP.
        """
        return status()['hardware_vteps'] if status is not None else []

    @app.get(PREFIX + '/pushes')
    def list_pushes(since: int = 0):
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

    @app.post(PREFIX + '/gateway-connections', status_code=201)
    async def connect(request: Request):
        body = await body_of(request)
        if isinstance(body, list):               # bulk: all or nothing
            return changed(store.bulk(store.connect_gateway, body))
        return changed(store.connect_gateway(body))

    @app.delete(PREFIX + '/gateway-connections/{conn_id}', status_code=204)
    def disconnect(conn_id: int):
        store.disconnect_gateway(conn_id)
        on_change()

    return app
