"""The table: what each uWSGI option becomes in sockactd, and why.

One source for the converter and for docs/migrating-from-uwsgi.md (scripts/gen-man
writes the docs table from `docs_rows()`; a test compares). Rules are looked up
in this order, first match wins:

1. OVERRIDES: options that belong to systemd although sockactd has a setting of
   the same name for running by hand (`socket`, `listen`, `chmod-socket`), and
   options whose value decides where it goes (`env`, `plugins`).
2. One rule per sockactd setting, derived from config/settings.py: the setting's
   name and long aliases, plus the uWSGI spellings in UWSGI_SPELLINGS, when
   uWSGI knows them. A setting added there with a uWSGI name is migrated from
   then on, with nothing to change here.
3. FALLBACKS: options with nothing to put in the TOML, each with its reason:
   DROPPED (the same behaviour comes another way), NONE (sockactd cannot do
   this) and NOT_YET (a planned setting; it wins by rule 2 once it exists).
4. PREFIXES: families such as `static-*`, `route*`, `cheaper-*`.

A key uWSGI does not know at all is a placeholder variable (uWSGI ignores it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from typing import Final

from sockactd.config.settings import SETTINGS, Kind, by_name
from sockactd.migrate import units
from sockactd.migrate.units import Handler
from sockactd.migrate.uwsgi_options import UWSGI_OPTIONS

__all__ = ["Fate", "Rule", "docs_rows", "is_flag", "rule_for"]


class Fate(enum.Enum):
    """What happens to an option; the report and the exit status follow from it."""

    SETTING = "a setting in APP.toml"
    SOCKET = "a directive of sockactd@APP.socket"
    SERVICE = "a directive of sockactd@APP.service"
    DROPPED = "not needed"
    NONE = "no equivalent"
    NOT_YET = "no equivalent yet"

    @property
    def lost(self) -> bool:
        """True when the site would lose what the option did (exit status 1)."""
        return self in (Fate.NONE, Fate.NOT_YET)


@dataclass(frozen=True, slots=True)
class Rule:
    names: tuple[str, ...]  # the uWSGI option and its aliases (or prefixes)
    fate: Fate
    does: str  # for the docs: the setting, the directives, or "nothing"
    why: str = ""
    handler: Handler | None = None  # None: a setting (by name in `does`) or a fixed fate
    prefix: bool = False


# uWSGI's spellings of sockactd settings that sockactd has no flag for
UWSGI_SPELLINGS: Final = {
    "module": ("wsgi",),
    "wsgi-file": ("file",),
    "pythonpath": ("pp", "python-path"),
    "lazy-apps": ("lazy",),
    "chdir": ("chdir2",),
    "home": ("virtualenv", "venv", "pyhome"),
    "stats": ("stats-server",),
}
SETTING_NOTES: Final = {
    "threads": "`enable-threads` is implied",
    "lazy-apps": "needed for workers and chain reloads to load new code",
    "max-requests": "the replacement starts before the old worker leaves",
    "max-worker-lifetime": "the replacement starts before the old worker leaves",
    "reload-on-rss": "checked by the worker after every request; its replacement is forked at once",
    "evil-reload-on-rss": "the master kills (SIGKILL), checked every second",
    "stats": "uWSGI's stats JSON (uwsgitop, exporters); Prometheus: `metrics-socket`",
    "stats-http": "the stats JSON over HTTP at `GET /`",
    "buffer-size": "default 16384 (uWSGI: 4096)",
    "reload-mercy": "the graceful stop's budget",
    "touch-reload": "a standard reload (re-executes in place, old workers serve meanwhile)",
    "home": "the virtualenv's site-packages come before the system's; no `ExecStart=` drop-in",
}

_LOGS = "sockactd logs to stderr and journald keeps it: `journalctl -u sockactd@APP`"
_FRONT = "belongs to the front-end: nginx"
OVERRIDES: Final = (
    Rule(("socket", "uwsgi-socket"), Fate.SOCKET, "`ListenStream=`, `FileDescriptorName=uwsgi`",
         "the same address, so nginx's `uwsgi_pass` stays", units.listen_on("uwsgi")),
    Rule(("http-socket",), Fate.SOCKET, "`ListenStream=`, `FileDescriptorName=http`",
         "beside `socket`: in a second unit, `sockactd-APP-http.socket`", units.listen_on("http")),
    Rule(("http",), Fate.SOCKET, "`ListenStream=`, `FileDescriptorName=http`",
         "the workers speak HTTP themselves: no router process", units.listen_on("http")),
    Rule(("chmod-socket", "chmod"), Fate.SOCKET, "`SocketMode=`", "", units.socket_mode),
    Rule(("chown-socket",), Fate.SOCKET, "`SocketUser=`, `SocketGroup=`", "", units.socket_owner),
    Rule(("listen",), Fate.SOCKET, "`Backlog=`", "",
         units.number_directive("socket", "Backlog")),
    Rule(("reuse-port",), Fate.SOCKET, "`ReusePort=`", "", units.socket_flag("ReusePort")),
    Rule(("tcp-nodelay",), Fate.SOCKET, "`NoDelay=`", "", units.socket_flag("NoDelay")),
    Rule(("so-keepalive",), Fate.SOCKET, "`KeepAlive=`", "", units.socket_flag("KeepAlive")),
    Rule(("uid",), Fate.SERVICE, "`User=`, `DynamicUser=no`",
         "the shipped unit's other sandboxing stays", units.run_as("User")),
    Rule(("gid",), Fate.SERVICE, "`Group=`, `DynamicUser=no`", "", units.run_as("Group")),
    Rule(("limit-as",), Fate.SERVICE, "`LimitAS=`", "the same per-process limit, in MB",
         units.number_directive("service", "LimitAS", "M")),
    Rule(("max-fd",), Fate.SERVICE, "`LimitNOFILE=`", "",
         units.number_directive("service", "LimitNOFILE")),
    Rule(("limit-nproc",), Fate.SERVICE, "`LimitNPROC=`", "",
         units.number_directive("service", "LimitNPROC")),
    Rule(("umask",), Fate.SERVICE, "`UMask=`", "", units.umask),
    Rule(("env",), Fate.SETTING, "`env`; `Environment=` for `PYTHON*`, `LANG`, `LC_*`",
         "what the interpreter reads at start must be set before it starts", units.service_env),
    Rule(("py-autoreload", "python-autoreload", "py-auto-reload", "python-auto-reload"),
         Fate.DROPPED, "`py-autoreload`, by hand",
         "a development tool, refused under systemd: `sockactd --lazy-apps --py-autoreload N` "
         "while developing; a deploy touches `touch-chain-reload`"),
    Rule(("py-auto-reload-ignore",), Fate.DROPPED, "`reload-ignore`, by hand",
         "with `py-autoreload`, which is not carried over"),
    Rule(("reload",), Fate.DROPPED, "`systemctl reload sockactd@APP`",
         "uWSGI's `--reload PIDFILE` reloads a running instance (sockactd's `reload` setting "
         "is gunicorn's reload on save)"),
    Rule(("plugins", "plugin", "need-plugin", "need-plugins"), Fate.DROPPED, "nothing",
         "Python WSGI is built in; any other plugin has no equivalent", units.plugins),
)  # fmt: skip

FALLBACKS: Final = (
    Rule(("master",), Fate.DROPPED, "always", "sockactd always runs a master"),
    Rule(("vacuum",), Fate.DROPPED, "nothing", "systemd owns the socket file"),
    Rule(("die-on-term",), Fate.DROPPED, "always", "SIGTERM is a graceful stop"),
    Rule(("enable-threads",), Fate.DROPPED, "always", "threads are always enabled"),
    Rule(("single-interpreter",), Fate.DROPPED, "always", "one interpreter per process"),
    Rule(("need-app",), Fate.DROPPED, "always",
         "a worker that cannot import the app never serves; `boot-attempts` bounds start-up"),
    Rule(("no-orphans",), Fate.DROPPED, "always", "workers die with their master"),
    Rule(("strict",), Fate.DROPPED, "always", "unknown settings are always refused"),
    Rule(("thunder-lock",), Fate.DROPPED, "nothing",
         "not needed: a worker accepts one connection per wake-up"),
    Rule(("emperor", "vassals-inherit", "vassal-set"), Fate.DROPPED, "systemd templates",
         "one `sockactd@APP` instance per application"),
    Rule(("pidfile", "pidfile2", "safe-pidfile", "safe-pidfile2"), Fate.DROPPED, "nothing",
         "systemd knows the PID (`Type=notify`); a standard reload keeps it"),
    Rule(("daemonize", "daemonize2"), Fate.DROPPED, "nothing", "systemd runs the service"),
    Rule(("logto", "logto2", "logger", "req-logger", "log-master", "log-reopen", "log-maxsize",
          "log-backupname", "logfile-chmod", "logfile-chown", "log-date", "logdate",
          "touch-logreopen", "log-x-forwarded-for", "threaded-logger"),
         Fate.DROPPED, "journald", _LOGS),
    Rule(("disable-logging",), Fate.DROPPED, "the default",
         "no access log unless `access-log = true`"),
    Rule(("show-config",), Fate.DROPPED, "`sockactd --check`", "validates the configuration"),
    Rule(("master-fifo",), Fate.DROPPED, "`sockactctl reload`",
         "`sockactctl reload --mode standard|workers|chain --wait` instead of r / w / c"),
    Rule(("set-placeholder", "set-ph", "set", "declare-option"), Fate.DROPPED, "nothing",
         "placeholders are resolved while the file is read"),
    Rule(("http-keepalive",), Fate.DROPPED, "the default",
         "keep-alive is on: `keepalive-timeout`, `keepalive-requests`"),
    Rule(("post-buffering",), Fate.DROPPED, "nginx",
         "nginx buffers request bodies before they reach the server (`uwsgi_request_buffering`)"),
    Rule(("plugin-dir", "plugins-dir"), Fate.DROPPED, "nothing", "no plugins to load"),
    Rule(("print", "iprint"), Fate.DROPPED, "nothing", "a message uWSGI prints at start-up"),
    Rule(("https", "http-to", "http-timeout", "https-socket", "ssl-socket", "http-modifier1"),
         Fate.NONE, "", "TLS and HTTP routing belong to the front-end: nginx"),
    Rule(("check-static", "offload-threads"), Fate.NONE, "", "serving static files " + _FRONT),
    Rule(("add-header", "del-header"), Fate.NONE, "", "rewriting responses " + _FRONT),
    Rule(("mount", "manage-script-name", "vhost", "no-default-app"), Fate.NONE, "",
         "one application per instance; a URL prefix comes from nginx (`uwsgi_param SCRIPT_NAME`)"),
    Rule(("cron", "cron2", "unique-cron", "cache2", "sharedarea", "rpc", "signal", "timer"),
         Fate.NONE, "", "services beyond serving requests: systemd timers or units, a cache"),
    Rule(("cheaper", "idle", "die-on-idle"), Fate.NONE, "",
         "a fixed number of processes (SIGTTIN / SIGTTOU by hand)"),
    Rule(("chroot", "cap", "unshare", "jail"), Fate.NONE, "",
         "systemd sandboxing in the service drop-in (`RootDirectory=`, `CapabilityBoundingSet=`)"),
    Rule(("auto-procname", "procname", "procname-master"), Fate.NONE, "",
         "process titles are not changed"),
    Rule(("memory-report", "log-format", "logformat", "harakiri-verbose"), Fate.NONE, "",
         "the access log has one fixed format"),
    Rule(("async", "gevent", "ugreen"), Fate.NONE, "", "prefork workers with `threads` only"),
    Rule(("http-websockets",), Fate.NONE, "", "WSGI has no websockets"),
    Rule(("protocol", "socket-protocol"), Fate.NONE, "",
         "the socket unit's `FileDescriptorName=` (http or uwsgi) names the protocol"),
    Rule(("cpu-affinity", "reload-on-as", "evil-reload-on-as", "min-worker-lifetime",
          "wsgi-disable-file-wrapper", "unenv", "abstract-socket"), Fate.NONE, "", ""),
)  # fmt: skip

PREFIXES: Final = (
    Rule(("static-",), Fate.NONE, "", "serving static files " + _FRONT, prefix=True),
    Rule(("route", "response-route", "final-route", "error-route"), Fate.NONE, "",
         "routing " + _FRONT, prefix=True),
    Rule(("spooler", "mule", "attach-daemon", "smart-attach-daemon", "cache-"), Fate.NONE, "",
         "services beyond serving requests: a task queue, systemd units", prefix=True),
    Rule(("cheaper-",), Fate.NONE, "", "a fixed number of processes", prefix=True),
    Rule(("hook-", "exec-", "call-"), Fate.NONE, "",
         "`ExecStartPre=` / `ExecStartPost=` in the service drop-in", prefix=True),
    Rule(("emperor-", "vassal"), Fate.DROPPED, "systemd templates",
         "one `sockactd@APP` instance per application", prefix=True),
    Rule(("procname-",), Fate.NONE, "", "process titles are not changed", prefix=True),
    Rule(("log-",), Fate.DROPPED, "journald", _LOGS, prefix=True),
)  # fmt: skip

_FLAG_NAMES: Final = (
    "master vacuum die-on-term enable-threads single-interpreter need-app no-orphans strict "
    "thunder-lock lazy lazy-apps disable-logging log-master memory-report auto-procname "
    "reuse-port tcp-nodelay so-keepalive show-config manage-script-name http-websockets "
    "logdate log-date harakiri-verbose vhost no-default-app"
)
_FLAGS: Final = frozenset(_FLAG_NAMES.split())


@cache
def setting_rules() -> tuple[Rule, ...]:
    """One rule per sockactd setting that uWSGI knows by some name."""
    rules = []
    for setting in SETTINGS:
        spellings = [setting.name, *(a[2:] for a in setting.aliases if a.startswith("--"))]
        spellings += UWSGI_SPELLINGS.get(setting.name, ())
        names = tuple(dict.fromkeys(name for name in spellings if name in UWSGI_OPTIONS))
        if names:
            why = SETTING_NOTES.get(setting.name, "")
            rules.append(Rule(names, Fate.SETTING, setting.name, why))
    return tuple(rules)


@cache
def _index() -> tuple[dict[str, Rule], tuple[Rule, ...]]:
    exact: dict[str, Rule] = {}
    for rule in (*OVERRIDES, *setting_rules(), *FALLBACKS):
        for name in rule.names:
            exact.setdefault(name, rule)
    return exact, PREFIXES


def rule_for(key: str) -> Rule | None:
    """The rule for uWSGI option `key`, or None (see the module's lookup order)."""
    exact, prefixes = _index()
    if key in exact:
        return exact[key]
    return next((r for r in prefixes if key.startswith(r.names)), None)


def is_flag(key: str) -> bool:
    """Whether uWSGI option `key` takes no value on a command line."""
    rule = rule_for(key)
    if rule is not None and rule.fate is Fate.SETTING and rule.handler is None:
        return by_name(rule.does).kind is Kind.BOOL
    return key in _FLAGS


def docs_rows() -> list[tuple[Fate, tuple[str, ...], Rule]]:
    """Each rule with the names it really decides (earlier rules win), in table order."""
    exact, prefixes = _index()
    rows = []
    for rule in (*OVERRIDES, *setting_rules(), *FALLBACKS, *prefixes):
        names = rule.names if rule.prefix else tuple(n for n in rule.names if exact[n] is rule)
        if names:
            rows.append((rule.fate, names, rule))
    order = list(Fate)
    return sorted(rows, key=lambda row: order.index(row[0]))
