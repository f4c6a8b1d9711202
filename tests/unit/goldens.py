"""Golden files (tests/unit/golden/): what a pure function made, compared
with what it made when a person last checked it; UPDATE_GOLDEN=1 writes
the file anew first (then look at `git diff`)."""
import json
import os

GOLDEN = os.path.join(os.path.dirname(__file__), 'golden')


def matches(name, obj):
    """Whether `obj` (as JSON) equals the golden file `name`."""
    path = os.path.join(GOLDEN, name)
    if os.environ.get('UPDATE_GOLDEN'):
        with open(path, 'w') as f:
            json.dump(obj, f, indent=1, sort_keys=True)
    with open(path) as f:
        return json.loads(json.dumps(obj)) == json.load(f)
