"""The runs in results/ as the web view's results page lists them: one
item per results/<name>/<UTC timestamp>/ that holds a result.json
(scenarios.results), newest first, with its verdict and the files a
browser shows (plots, transcripts, diagrams), and the summary report
(`./run.py report`) when there is one. Reads files only."""
import json
import os
import re

STAMP = re.compile(r'^\d{8}T\d{6}Z$')
SHOWN = ('.png', '.txt', '.json', '.csv', '.md', '.log')


def shown(root, path):
    """The file of results/ at `path` (relative) that the web view may
    show, or None: one of the SHOWN kinds, inside `root` once links are
    resolved."""
    base = os.path.realpath(root)
    full = os.path.realpath(os.path.join(base, path))
    if not full.startswith(base + os.sep) or not full.endswith(SHOWN) or \
            not os.path.isfile(full):
        return None
    return full


def runs(root, limit=500):
    """{'runs': [{'name', 'stamp', 'passed', 'topology', 'files'}],
    'report': [file names of the summary], 'total': how many runs there
    are} for `root` (results/); a run whose result.json cannot be read
    is listed with passed None and 'problem'."""
    out = []
    names = sorted(os.listdir(root)) if os.path.isdir(root) else []
    for name in names:
        d = os.path.join(root, name)
        if not os.path.isdir(d):
            continue
        for stamp in os.listdir(d):
            run = os.path.join(d, stamp)
            res = os.path.join(run, 'result.json')
            if not STAMP.match(stamp) or not os.path.exists(res):
                continue
            item = {'name': name, 'stamp': stamp, 'passed': None,
                    'topology': None, 'files': []}
            try:                   # a run may be removed while listed
                item['files'] = sorted(f for f in os.listdir(run)
                                       if f.endswith(SHOWN))
                with open(res) as f:
                    r = json.load(f)
                if not isinstance(r, dict):
                    raise ValueError('not a JSON object')
                item.update(passed=bool(r.get('passed')),
                            topology=r.get('topology'))
            except (OSError, ValueError) as exc:
                item['problem'] = f'result.json unreadable: {exc}'
            out.append(item)
    out.sort(key=lambda r: (r['stamp'], r['name']), reverse=True)
    report = sorted(f for f in ('report.md', 'report.png')
                    if os.path.exists(os.path.join(root, f)))
    return {'runs': out[:limit], 'report': report, 'total': len(out)}
