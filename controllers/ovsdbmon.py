"""Follow one OVSDB table with `ovsdb-client monitor` (pushed updates, no
polling): a thin reader used by the controller's monitors.

    Monitor(db, 'hardware_vtep', 'Ucast_Macs_Local', 'MAC,logical_switch',
            on_rows).start()

`on_rows(rows)` gets, after each update, the list of rows it carried: dicts
of the monitored columns plus 'row' (uuid) and 'action' ('initial',
'insert', 'delete', 'old', 'new'), values in OVSDB JSON notation.
"""
import json
import subprocess
import threading


class Monitor:
    def __init__(self, db, database, table, columns, on_rows):
        self.cmd = ['ovsdb-client', '--format=json', 'monitor', db, database,
                    table, columns]
        self.on_rows = on_rows
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._run, daemon=True,
                         name=' '.join(self.cmd[3:6])).start()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()

    def _run(self):
        for line in self.proc.stdout:
            try:
                upd = json.loads(line)
            except ValueError:
                continue
            heads = upd.get('headings', [])
            self.on_rows([dict(zip(heads, data))
                          for data in upd.get('data', [])])
