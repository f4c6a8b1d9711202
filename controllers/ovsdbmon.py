"""Follow one OVSDB table with `ovsdb-client monitor` (pushed updates, no
polling): a thin reader used by the controller's monitors.

    Monitor(db, 'Open_vSwitch', 'Interface', 'name,bfd_status',
            on_rows).start()

`on_rows(rows)` gets, after each update, the list of rows it carried: dicts
of the monitored columns plus 'row' (uuid) and 'action' ('initial',
'insert', 'delete', 'old', 'new'), values in OVSDB JSON notation.

When `ovsdb-client` exits (its database went away, it was killed), that is
logged at ERROR with its exit status and last message, and it is started
again after a backoff (BACKOFF_S, doubling up to MAX_BACKOFF_S; back to the
start once a run delivered updates); the restarted client sends every row
again as 'initial'. Only stop() ends the thread.
"""
import json
import logging
import subprocess
import threading

LOG = logging.getLogger('nsx.ovsdbmon')


class Monitor:
    BACKOFF_S, MAX_BACKOFF_S = 0.5, 5.0

    def __init__(self, db, database, table, columns, on_rows):
        self.cmd = ['ovsdb-client', '--format=json', 'monitor', db, database,
                    table, columns]
        self.on_rows = on_rows
        self.proc = None
        self.restarts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()       # proc vs stop()

    @property
    def name(self):
        return ' '.join(self.cmd[3:6])

    def start(self):
        threading.Thread(target=self._run, daemon=True,
                         name=self.name).start()
        return self

    def stop(self):
        self._stop.set()
        with self._lock:
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()

    def _run(self):
        delay = self.BACKOFF_S
        while not self._stop.is_set():
            try:
                delivered, how = self._run_once()
            except Exception as exc:          # never a silent end
                LOG.exception('%s: monitor failed', self.name)
                delivered, how = False, f'failed: {exc}'
            if self._stop.is_set():
                break
            if delivered:
                delay = self.BACKOFF_S
            LOG.error('%s: ovsdb-client %s; restarting in %.1f s',
                      self.name, how, delay)
            self.restarts += 1
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.MAX_BACKOFF_S)

    def _run_once(self):
        """One ovsdb-client run, until it exits -> (delivered any update?,
        how it ended). Its stderr goes to the same pipe: lines that are not
        JSON are kept for the log."""
        with self._lock:
            if self._stop.is_set():
                return False, 'not started (stopped)'
            self.proc = proc = subprocess.Popen(
                self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True)
        delivered, said = False, ''
        with proc.stdout:
            for line in proc.stdout:
                try:
                    upd = json.loads(line)
                except ValueError:
                    said = line.strip() or said
                    continue
                delivered = True
                self._deliver(upd)
        rc = proc.wait()
        return delivered, f'exited with status {rc}' + (
            f' ({said})' if said else '')

    def _deliver(self, upd):
        try:
            heads = upd.get('headings', [])
            self.on_rows([dict(zip(heads, data))
                          for data in upd.get('data', [])])
        except Exception:                     # the reader goes on
            LOG.exception('%s: update not handled: %.200r', self.name, upd)
