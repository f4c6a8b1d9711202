"""Run a demo on a real lab: boot it with its controller, then for each act
start captures on every hop, make the lab do one thing (an ARP, a ping, a
crash, a migration), and walk through the act's steps: what the whitepaper
says, what was seen on the wire, which boxes got no copy and why, evidence
from the boxes' own tables. Pauses between steps unless `auto`.

Writes results/demo-NAME/<UTC>/: transcript.txt, sequence.png (+
diagram.json: its lanes and arrows as data), map.json (the controller's
map of the lab at the end: the web view's replay draws the arrows on it),
topology.png, actN/*.pcap (one per hop), result.json, controller and node
logs.
"""
import contextlib
import os
import sys
import textwrap
import time

from scenarios import harness, results
from topologies import labs

from . import actions, catalog, diagram, steps, topopic, wire


class Transcript:
    """Prints to the terminal and keeps every line for transcript.txt."""

    def __init__(self, out=print):
        self.lines, self.out = [], out

    def __call__(self, text=''):
        for line in str(text).splitlines() or ['']:
            self.lines.append(line)
            self.out(line)

    def save(self, path):
        with open(path, 'w') as f:
            f.write('\n'.join(self.lines) + '\n')
        return path


def run_act(lab, n, act, lanes, out_dir, say, ctx):
    """Captures around one action -> (arrows, points that could not be
    captured, the action's own notes, pcaps, the capture window)."""
    plan = lab.plan
    d = os.path.join(out_dir, f'act{n}')
    os.makedirs(d, exist_ok=True)
    points, skipped = [], []
    for pt in wire.capture_points(plan, lanes):
        if actions.intf_up(lab, pt[1], pt[3]):
            points.append(pt)
        else:
            skipped.append(f'{pt[1]}:{pt[3]} (down)')
    # uplinks: VXLAN with a VNI (the tunnels' BFD keepalives travel with VNI
    # 0 and would bury the exchange); segments: all but CFM
    groups = {'uplink': 'udp port 4789 and (udp[12:4] & 0xffffff00) != 0',
              'host': 'arp or icmp',
              'segment': 'not ether proto 0x8902'}
    notes = actions.prepare(lab, act['do'], ctx)
    caps = {k: harness.Captures(lab, [(p[0], p[1], p[3]) for p in points
                                      if p[2] == k], d, bpf)
            for k, bpf in groups.items()}
    with contextlib.ExitStack() as stack:
        for c in caps.values():
            stack.enter_context(c)
        # the window in which every point was listening: frames outside it
        # (a host's ARP refresh before the last tcpdump started) were not
        # seen everywhere and are not drawn
        start = time.time()
        notes += actions.do(lab, act['do'], ctx, say)
        time.sleep(0.5)                 # the action's last frames
        window = (start, time.time())
    frames = {}
    for c in caps.values():
        for name, recs in c.frames().items():
            frames[name] = wire.within(recs, window)
    pcaps = {p[0]: caps[p[2]].files[p[0]] for p in points}
    pair = tuple(wire.addr(plan['nodes'][h]['ip']) for h in act['pair'])
    arrows = wire.arrows(plan, [p[:3] for p in points], frames, pair,
                         act=n, macs=act['macs'])
    return arrows, skipped, notes, pcaps, window


def show_step(k, total, step, arrows, t0, sns, say):
    shown, problems = steps.judge(step, arrows, sns)
    say(f"\n  Step {k}/{total}: {step['title']}")
    if step['quote']:
        say(textwrap.fill(f"Whitepaper ({step['figure']}): "
                          f"\"{step['quote']}\"", 96,
                          initial_indent='    ', subsequent_indent='    '))
    if shown:
        say('    Observed on the wire:')
        for a in shown:
            for line in wire.describe(a, t0):
                say('      ' + line)
    for what, why in steps.no_copy(step, arrows, sns):
        say(f'    {what}: {why}')
    return problems


def walk_steps(lab, n, act, arrows, sns, ctx, say, pause):
    """Show and judge act `n`'s steps (evidence read from the boxes; one
    that does not hold is a problem of its step) -> verdicts; then the
    frames no step claimed."""
    verdicts = []
    t0 = arrows[0]['time'] if arrows else 0.0
    for k, step in enumerate(act['steps'], 1):
        problems = show_step(k, len(act['steps']), step, arrows, t0, sns,
                             say)
        for ev in step['evidence']:
            lines, ok = actions.evidence(lab, ev, ctx)
            for line in lines:
                say('    ' + line)
            if not ok:
                problems.append(f'evidence {ev}: not as described')
        say('    => ' + ('as the whitepaper describes' if not problems
                         else 'DIFFERS: ' + '; '.join(problems)))
        verdicts.append({'act': n, 'step': step['title'],
                         'held': not problems, 'problems': problems})
        if k < len(act['steps']):
            pause()
    shown = set()
    for step in act['steps']:
        shown |= {id(a) for a in steps.judge(step, arrows, sns)[0]}
    for a in arrows:
        if id(a) not in shown:
            say('  also observed: ' + wire.describe(a, t0)[0].strip())
    return verdicts


def write_diagram(name, demo, plan, acts_drawn, out_dir):
    """sequence.png and diagram.json (with each act's pcaps, capture
    window, IP pair and moved MACs, so the drawing can be checked against
    the captures)."""
    m = diagram.model(demo['lanes'], [(t, a) for t, a, _, _ in acts_drawn])
    roles = {b: plan['nodes'][b]['role'] for b in m['lanes']
             if b in plan['nodes']}
    seq = diagram.draw(m, roles, os.path.join(out_dir, 'sequence.png'),
                       f"{name}: {demo['title']}")
    m['pcaps'] = {str(n): p for n, (_, _, p, _) in enumerate(acts_drawn, 1)}
    m['windows'] = {str(n): w for n, (_, _, _, w) in
                    enumerate(acts_drawn, 1)}
    m['pairs'] = {str(n): [wire.addr(plan['nodes'][h]['ip'])
                           for h in act['pair']]
                  for n, act in enumerate(demo['acts'], 1)}
    m['macs'] = {str(n): act['macs'] for n, act in
                 enumerate(demo['acts'], 1)}
    path = results.save_json(m, os.path.join(out_dir, 'diagram.json'))
    return m, seq, path


def run(name, fabric='clos', auto=False, progress=print, out=print,
        wait=input, vtep_device=None):
    spec_of, demo_of = catalog.DEMOS[name]
    out_dir = results.run_dir(f'demo-{name}')
    say = Transcript(out)
    if not auto and not sys.stdin.isatty():
        progress('stdin is not a terminal: running through without pauses '
                 '(--auto says so explicitly)')
        auto = True
    def pause():
        if not auto:
            wait('  -- Enter: next step --')
    env = harness.ControlledLab(labs.with_vtep_device(spec_of(fabric),
                                                      vtep_device),
                                progress, out_dir)
    verdicts, acts_drawn = [], []
    with env as lab:
        plan = lab.plan
        demo = demo_of(plan)
        topo_png = topopic.draw(plan, os.path.join(out_dir, 'topology.png'))
        sns = {n for n, p in plan['nodes'].items()
               if p['role'] == 'service_node'}
        ctx = {'plan': plan}
        actions.ready(lab, demo, ctx)
        say(f"Demo {name}: {demo['title']}\nLab {plan['name']} "
            f"({plan['fabric']}); topology picture: {topo_png}")
        for n, act in enumerate(demo['acts'], 1):
            say(f"\n== Act {n}/{len(demo['acts'])}: {act['title']} ==")
            pause()
            arrows, skipped, notes, pcaps, window = run_act(
                lab, n, act, demo['lanes'], out_dir, say, ctx)
            for line in notes:
                say('  ' + line)
            if skipped:
                say('  not captured (interface down): ' + ', '.join(skipped))
            say(f'  {len(arrows)} frame(s) crossed between boxes; pcaps: '
                f'{os.path.join(out_dir, f"act{n}")}/')
            verdicts += walk_steps(lab, n, act, arrows, sns, ctx, say,
                                   pause)
            title = act['title'] + (f" ({ctx.pop('headline')})"
                                    if 'headline' in ctx else '')
            acts_drawn.append((title, arrows, pcaps, window))
        lab_map = results.save_json(lab.ctl.get('/map'),
                                    os.path.join(out_dir, 'map.json'))
    m, seq, model_path = write_diagram(name, demo, plan, acts_drawn, out_dir)
    errors = env.controller_errors()
    held = sum(v['held'] for v in verdicts)
    say(f'\n{held}/{len(verdicts)} steps as the whitepaper describes'
        + (f'; controller errors: {errors[:3]}' if errors else ''))
    say(f'sequence diagram: {seq}\ntopology: {topo_png}\nreplay on the '
        f'topology: the web view of any running lab (./run.py cli), page '
        f"ui/replay.html?run=demo-{name}/{os.path.basename(out_dir)} (or "
        'Results -> replay)')
    transcript = say.save(os.path.join(out_dir, 'transcript.txt'))
    pcaps = sorted(p for _, _, ps, _ in acts_drawn for p in ps.values())
    res = results.result(
        f'demo-{name}', plan['name'],
        held == len(verdicts) and not errors,
        {'steps': verdicts, 'steps_held': held, 'steps_total': len(verdicts),
         'arrows': len(m['arrows']), 'lanes': m['lanes'],
         'controller_errors': errors[:20]},
        [seq, model_path, lab_map, topo_png, transcript] + pcaps
        + [os.path.join(out_dir, 'controller.log')])
    results.save(res, out_dir)
    return res
