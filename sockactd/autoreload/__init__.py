"""py-autoreload: reload when a source file the workers imported changes (a development tool).

Theory of operation. A worker with py-autoreload on (worker/entry.py) reports the
source files of the modules it imported on its status pipe (an `M` frame,
worker/module_report.py): once after loading the app, before READY, and after any request
that imported something new -- only the files it has not reported before, and
only when `sys.modules` grew, so a request that imported nothing costs one
len(). The master (watch.py) watches those files and every `reload-extra-file`,
with inotify where it can (scan.py says where it cannot: network and FUSE
filesystems, the watch limit, `reload-engine = poll`) and by a stat scan every
`py-autoreload` seconds elsewhere. A burst of changes is one reload
(triggers.base.Debouncer), in the configured `reload-mode`; new code that does
not import aborts that reload as any reload aborts: the old workers keep serving.

Nothing in this package is imported when py-autoreload is off
(tests/integration/test_start_up_path.py).
"""
