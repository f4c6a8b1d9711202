"""A Store provisioned from a lab plan the way `provision` does it
through the API (pure: no controller, no lab)."""
from controllers import core as core_mod, model, provision


def store_for(plan):
    """The Store of a controller that took `plan`'s provisioning."""
    inv, nodes = core_mod.inventory_from_plan(plan)
    st = model.Store(inventory=inv, nodes=nodes)
    ids = {}
    for _method, path, bodies in provision.requests_for(plan):
        for b in bodies:
            b = {k: ids[v[4:-1]] if isinstance(v, str) and
                 v.startswith('{ls:') else v for k, v in b.items()}
            if path == '/logical-switches':
                ids[b['name']] = st.create_ls(b)['id']
            elif path.endswith('/ports'):
                st.attach(ids[path.split('{ls:')[1].split('}')[0]], b)
            else:
                st.connect_gateway(b)
    return st
