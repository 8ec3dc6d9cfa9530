"""Every setting sockactd has, as one declarative table.

This table is the single source for the command line (cli.py), the TOML config
file and the SOCKACTD_* environment (load.py), `sockactd --help`, and the man
pages (a test fails when a setting here is missing from man/). Names and
meanings follow uWSGI where uWSGI has the option, so operators can move over.

This module holds data and tiny pure checks only; merging and validation of
values live in load.py.

Why ~730 lines: a table, one row per setting (SETTINGS); the code is the first
150 lines.
"""

from __future__ import annotations

from sockactd.modes import ReloadMode
from sockactd.symbol import Symbol

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ClassVar, Final

__all__ = ["SETTINGS", "Applies", "Kind", "Setting", "by_name"]


class Kind(Symbol):
    """A setting's type."""

    STR: ClassVar[Kind]
    INT: ClassVar[Kind]
    FLOAT: ClassVar[Kind]
    BOOL: ClassVar[Kind]
    LIST: ClassVar[Kind]  # repeatable flag, TOML array, comma-separated in the environment
    CHOICE: ClassVar[Kind]
    MODE: ClassVar[Kind]  # a reload mode's name, parsed into a sockactd.modes.ReloadMode


Kind.STR = Kind("STR", "string")
Kind.INT = Kind("INT", "integer")
Kind.FLOAT = Kind("FLOAT", "number")
Kind.BOOL = Kind("BOOL", "boolean")
Kind.LIST = Kind("LIST", "list of strings")
Kind.CHOICE = Kind("CHOICE", "one of")
Kind.MODE = Kind("MODE", "reload mode")


class Applies(Symbol):
    """When a changed value takes effect; master/reconfig.py acts on it, gen-man prints it.

    Every reload first loads the configuration again. A WORKERS or MASTER setting
    changed in it is taken by a reload of any mode; a STANDARD setting needs a new
    master image, so a workers or chain reload that finds one changed is refused
    with a message naming the setting (the man pages say why: refuse, not escalate).
    """

    WORKERS: ClassVar[Applies]  # read by each worker: the workers a reload starts take it
    MASTER: ClassVar[Applies]  # read by the master: in force from the reload that finds it
    STANDARD: ClassVar[Applies]  # fixed in the master image: a standard reload (or restart)


Applies.WORKERS = Applies("WORKERS", "any reload; the workers it starts take the new value")
Applies.MASTER = Applies("MASTER", "any reload; the master uses the new value from that reload on")
Applies.STANDARD = Applies(
    "STANDARD",
    "a standard reload (or a restart); a workers or chain reload that finds it changed is refused",
)


class Setting:
    """One setting: its name, kind, default and documentation. Read-only once made."""

    __slots__ = (
        "aliases",
        "applies",
        "attr",
        "check",
        "choices",
        "default",
        "doc",
        "env",
        "flag",
        "kind",
        "metavar",
        "name",
        "section",
    )

    name: str  # long option, TOML key; env is SOCKACTD_<NAME_UPPER>
    kind: Kind
    default: object
    doc: str
    section: str
    aliases: tuple[str, ...]  # other flags, e.g. ("--workers",) or ("-s",)
    choices: tuple[str, ...]
    check: Callable[[object], str | None] | None  # returns an error message or None
    applies: Applies  # when a changed value takes effect
    metavar: str
    flag: str  # --name
    env: str  # SOCKACTD_NAME
    attr: str  # the Config field: name with - replaced by _

    def __init__(
        self,
        name: str,
        kind: Kind,
        default: object,
        *,
        doc: str,
        section: str,
        aliases: tuple[str, ...] = (),
        choices: tuple[str, ...] = (),
        check: Callable[[object], str | None] | None = None,
        applies: Applies,
        metavar: str = "",
    ) -> None:
        fields = {
            "name": name,
            "kind": kind,
            "default": default,
            "doc": doc,
            "section": section,
            "aliases": aliases,
            "choices": choices,
            "check": check,
            "applies": applies,
            "metavar": metavar,
            "flag": f"--{name}",
            "env": "SOCKACTD_" + name.upper().replace("-", "_"),
            "attr": name.replace("-", "_"),
        }
        for field, value in fields.items():
            object.__setattr__(self, field, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Setting is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Setting is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:
        return f"Setting({self.name!r}, {self.kind})"


def at_least(low: float) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        assert isinstance(value, int | float)
        return None if value >= low else f"must be at least {low:g}, got {value}"

    return check


APP = "Application"
SOCKETS = "Sockets"
PROCESSES = "Processes"
HTTP = "HTTP and requests"
RELOAD = "Reloading"
CONTROL = "Control and logging"
MONITORING = "Monitoring"

SETTINGS: Final[tuple[Setting, ...]] = (
    # --- application -------------------------------------------------------
    Setting(
        "module",
        Kind.STR,
        None,
        section=APP,
        applies=Applies.WORKERS,
        metavar="MODULE:CALLABLE",
        doc="The WSGI application to serve, as `package.module:callable` "
        "(the callable defaults to `application`). May also be given as the "
        "only positional argument.",
    ),
    Setting(
        "wsgi-file",
        Kind.STR,
        None,
        section=APP,
        applies=Applies.WORKERS,
        metavar="FILE",
        doc="Load the WSGI application from this Python file instead of a module.",
    ),
    Setting(
        "callable",
        Kind.STR,
        "application",
        section=APP,
        applies=Applies.WORKERS,
        metavar="NAME",
        doc="Name of the WSGI callable inside `wsgi-file` or `module`.",
    ),
    Setting(
        "pythonpath",
        Kind.LIST,
        [],
        section=APP,
        applies=Applies.WORKERS,
        metavar="DIR",
        doc="Directory prepended to sys.path before the application is imported (repeatable).",
    ),
    Setting(
        "chdir",
        Kind.STR,
        None,
        section=APP,
        applies=Applies.WORKERS,
        metavar="DIR",
        doc="Change to this directory before loading the application.",
    ),
    Setting(
        "env",
        Kind.LIST,
        [],
        section=APP,
        applies=Applies.WORKERS,
        metavar="KEY=VALUE",
        doc="Set an environment variable for the application (repeatable). An entry "
        "removed from the file is gone after the next reload, and a variable it overrode "
        "has the service's own value again.",
    ),
    Setting(
        "lazy-apps",
        Kind.BOOL,
        False,
        section=APP,
        applies=Applies.STANDARD,
        doc="Load the application in each worker after fork instead of once in the "
        "master before forking. Needed for `workers` and `chain` reloads to pick "
        "up new code.",
    ),
    Setting(
        "home",
        Kind.STR,
        None,
        section=APP,
        applies=Applies.STANDARD,
        aliases=("--virtualenv", "--venv", "--pyhome", "-H"),
        metavar="DIR",
        doc="A virtualenv (made with `python3 -m venv` for the Python sockactd runs on) "
        "whose site-packages, with their .pth files, come before the system's when the "
        "application is imported: the packaged sockactd serves an app whose dependencies "
        "live there. Its bin/ is not put on PATH. A directory without pyvenv.cfg, or one "
        "made for another Python version, is a configuration error (exit 78). The shipped "
        "unit hides /home (ProtectHome=yes): keep it elsewhere, e.g. /srv/APP/venv.",
    ),
    # --- sockets ---------------------------------------------------------------
    Setting(
        "http-socket",
        Kind.LIST,
        [],
        section=SOCKETS,
        applies=Applies.STANDARD,
        metavar="ADDR",
        doc="Bind an HTTP/1.1 socket at HOST:PORT, [IPv6]:PORT or a UNIX socket path "
        "(repeatable). Ignored for addresses systemd already passed in.",
    ),
    Setting(
        "socket",
        Kind.LIST,
        [],
        section=SOCKETS,
        applies=Applies.STANDARD,
        aliases=("-s",),
        metavar="ADDR",
        doc="Bind a socket speaking the uwsgi protocol (for nginx `uwsgi_pass`), "
        "same address forms as `http-socket` (repeatable).",
    ),
    Setting(
        "listen",
        Kind.INT,
        0,
        section=SOCKETS,
        applies=Applies.STANDARD,
        aliases=("-l",),
        check=at_least(0),
        metavar="N",
        doc="listen(2) backlog for sockets sockactd binds itself; 0 means the kernel "
        "maximum (net.core.somaxconn). Never applied to sockets from systemd, whose "
        "socket unit's Backlog= stays in force.",
    ),
    Setting(
        "chmod-socket",
        Kind.STR,
        None,
        section=SOCKETS,
        applies=Applies.STANDARD,
        metavar="MODE",
        doc="Octal mode for UNIX sockets sockactd binds itself (e.g. 660).",
    ),
    # --- processes -------------------------------------------------------------
    Setting(
        "processes",
        Kind.INT,
        2,
        section=PROCESSES,
        applies=Applies.MASTER,
        aliases=("--workers", "-p"),
        check=at_least(1),
        metavar="N",
        doc="Number of worker processes.",
    ),
    Setting(
        "threads",
        Kind.INT,
        1,
        section=PROCESSES,
        applies=Applies.WORKERS,
        check=at_least(1),
        metavar="N",
        doc="Request-handling threads in each worker.",
    ),
    Setting(
        "harakiri",
        Kind.FLOAT,
        0.0,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(0),
        metavar="SECONDS",
        doc="Kill and replace a worker whose request runs longer than this; 0 disables.",
    ),
    Setting(
        "max-requests",
        Kind.INT,
        0,
        section=PROCESSES,
        applies=Applies.MASTER,
        aliases=("-R",),
        check=at_least(0),
        metavar="N",
        doc="Recycle a worker after it served this many requests (its replacement "
        "starts first); 0 disables.",
    ),
    Setting(
        "boot-attempts",
        Kind.INT,
        3,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(1),
        metavar="N",
        doc="At start-up, give up after this many workers in a row failed to boot "
        "(the application does not import) and exit with a non-zero status.",
    ),
    Setting(
        "ready-timeout",
        Kind.FLOAT,
        60.0,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(0.1),
        metavar="SECONDS",
        doc="How long a new worker may take to import the application and report "
        "ready before it is killed (and a reload using it is aborted). It also bounds "
        "a standard reload's pre-flight check of the new code: a check still running "
        "then is killed and the reload aborted; the old generation keeps serving.",
    ),
    Setting(
        "reload-mercy",
        Kind.FLOAT,
        30.0,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(0),
        metavar="SECONDS",
        doc="On a graceful stop (SIGTERM), how long in-flight requests may run before "
        "the remaining workers are killed.",
    ),
    Setting(
        "worker-reload-mercy",
        Kind.FLOAT,
        60.0,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(0),
        metavar="SECONDS",
        doc="How long a retired worker may take to finish its in-flight requests "
        "before it is killed.",
    ),
    Setting(
        "max-requests-delta",
        Kind.INT,
        0,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(0),
        metavar="N",
        doc="Worker number K (1, 2, ...) is recycled after `max-requests` + K * N "
        "requests, so workers started together do not all recycle at once "
        "(uWSGI's option).",
    ),
    Setting(
        "max-worker-lifetime",
        Kind.FLOAT,
        0.0,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(0),
        metavar="SECONDS",
        doc="Recycle a worker this long after it started (its replacement starts "
        "first); 0 disables. Checked once a second.",
    ),
    Setting(
        "max-worker-lifetime-delta",
        Kind.FLOAT,
        0.0,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(0),
        metavar="SECONDS",
        doc="Worker number K lives `max-worker-lifetime` + K * SECONDS, so workers "
        "started together do not all recycle at once (uWSGI's option).",
    ),
    Setting(
        "reload-on-rss",
        Kind.INT,
        0,
        section=PROCESSES,
        applies=Applies.WORKERS,
        check=at_least(0),
        metavar="MB",
        doc="A worker whose resident memory passes this many MiB after a request "
        "serves that request (with `Connection: close`), stops accepting and is "
        "replaced at once; 0 disables. The worker checks after every request.",
    ),
    Setting(
        "evil-reload-on-rss",
        Kind.INT,
        0,
        section=PROCESSES,
        applies=Applies.MASTER,
        check=at_least(0),
        metavar="MB",
        doc="Hard limit: the master kills (SIGKILL) a worker whose resident memory "
        "passes this many MiB, even in the middle of a request; 0 disables. "
        "Checked once a second.",
    ),
    # --- HTTP --------------------------------------------------------------------
    Setting(
        "limit-post",
        Kind.INT,
        0,
        section=HTTP,
        applies=Applies.WORKERS,
        check=at_least(0),
        metavar="BYTES",
        doc="Largest request body accepted (413 above it); 0 means no limit.",
    ),
    Setting(
        "buffer-size",
        Kind.INT,
        16384,
        section=HTTP,
        applies=Applies.WORKERS,
        aliases=("-b",),
        check=at_least(1024),
        metavar="BYTES",
        doc="Largest request head (request line and headers, or a uwsgi vars block); "
        "larger requests get 431, or 414 when the request line alone is longer (HTTP), or "
        "are closed (uwsgi).",
    ),
    Setting(
        "header-timeout",
        Kind.FLOAT,
        10.0,
        section=HTTP,
        applies=Applies.WORKERS,
        check=at_least(0.1),
        metavar="SECONDS",
        doc="A client must send its complete request head within this time after "
        "connecting (or after its previous response); it holds no worker meanwhile.",
    ),
    Setting(
        "socket-timeout",
        Kind.FLOAT,
        30.0,
        section=HTTP,
        applies=Applies.WORKERS,
        check=at_least(0.1),
        metavar="SECONDS",
        doc="Timeout for each read of a request body and each write of a response.",
    ),
    Setting(
        "body-timeout",
        Kind.FLOAT,
        10.0,
        section=HTTP,
        applies=Applies.WORKERS,
        check=at_least(0),
        metavar="SECONDS",
        doc="A request body must arrive within this time after the app first waits for "
        "it, extended by one second for every `body-min-rate` bytes received; past it the "
        "request gets 408 and the connection is closed. 0 disables (only socket-timeout "
        "bounds each read).",
    ),
    Setting(
        "body-min-rate",
        Kind.INT,
        500,
        section=HTTP,
        applies=Applies.WORKERS,
        check=at_least(0),
        metavar="BYTES",
        doc="Bytes per second of request body that extend `body-timeout` by one second, "
        "so a steady upload of any size goes on while a trickle ends; 0 makes "
        "`body-timeout` a fixed deadline for the whole body.",
    ),
    Setting(
        "keepalive-timeout",
        Kind.FLOAT,
        5.0,
        section=HTTP,
        applies=Applies.WORKERS,
        check=at_least(0),
        metavar="SECONDS",
        doc="Close an idle keep-alive connection after this long; 0 disables keep-alive.",
    ),
    Setting(
        "keepalive-requests",
        Kind.INT,
        1000,
        section=HTTP,
        applies=Applies.WORKERS,
        check=at_least(1),
        metavar="N",
        doc="Close a keep-alive connection after this many requests.",
    ),
    Setting(
        "worker-connections",
        Kind.INT,
        1000,
        section=HTTP,
        applies=Applies.WORKERS,
        check=at_least(1),
        metavar="N",
        doc="Most connections one worker keeps parked (waiting for a request head, or "
        "idle between keep-alive requests). A worker at this cap, or out of file "
        "descriptors, makes room for the next one by closing the connection that has "
        "waited longest for its first answer, or else the keep-alive connection idle "
        "longest once idle for half of keepalive-timeout; when none may go, it stops "
        "accepting for a moment and new connections wait in the accept queue.",
    ),
    Setting(
        "trusted-proxies",
        Kind.LIST,
        [],
        section=HTTP,
        applies=Applies.WORKERS,
        metavar="ADDR",
        doc="Peer addresses (IP or CIDR) whose X-Forwarded-For and X-Forwarded-Proto "
        "headers are believed (repeatable); `unix` trusts peers on UNIX sockets.",
    ),
    # --- reloading ---------------------------------------------------------------
    Setting(
        "reload-mode",
        Kind.MODE,
        ReloadMode.CHAIN,
        section=RELOAD,
        applies=Applies.MASTER,
        doc="What SIGHUP and `sockactctl reload` without --mode do.",
    ),
    Setting(
        "drain-first",
        Kind.BOOL,
        False,
        section=RELOAD,
        applies=Applies.MASTER,
        doc="In a standard reload, stop the old workers before the new generation "
        "starts (uWSGI's behaviour, for applications that cannot run two "
        "generations at once). Leaves a gap in service while the new one boots.",
    ),
    Setting(
        "touch-reload",
        Kind.LIST,
        [],
        section=RELOAD,
        applies=Applies.STANDARD,
        metavar="FILE",
        doc="Do a standard reload when this file is touched, replaced, created or "
        "deleted (repeatable).",
    ),
    Setting(
        "touch-workers-reload",
        Kind.LIST,
        [],
        section=RELOAD,
        applies=Applies.STANDARD,
        metavar="FILE",
        doc="Do a workers reload when this file changes (repeatable).",
    ),
    Setting(
        "touch-chain-reload",
        Kind.LIST,
        [],
        section=RELOAD,
        applies=Applies.STANDARD,
        metavar="FILE",
        doc="Do a chain reload when this file changes (repeatable).",
    ),
    Setting(
        "py-autoreload",
        Kind.FLOAT,
        0.0,
        section=RELOAD,
        applies=Applies.STANDARD,
        check=at_least(0),
        metavar="SECONDS",
        doc="Development: reload in `reload-mode` when a source file of a module the "
        "workers imported, or a `reload-extra-file`, changes; watched with inotify, or "
        "by a stat scan every SECONDS where inotify cannot watch it. 0 turns it off. "
        "Needs `lazy-apps`. New code that does not import aborts the reload: the old "
        "workers keep serving and the traceback is logged once. Refused under systemd "
        "unless `autoreload-under-systemd` is set.",
    ),
    Setting(
        "reload",
        Kind.BOOL,
        False,
        section=RELOAD,
        applies=Applies.STANDARD,
        doc="gunicorn's name for `py-autoreload = 1` (with a `py-autoreload` of its own, "
        "that one's interval counts).",
    ),
    Setting(
        "reload-extra-file",
        Kind.LIST,
        [],
        section=RELOAD,
        applies=Applies.STANDARD,
        metavar="PATH",
        doc="With `py-autoreload`: also reload when this file changes (templates, "
        "settings files); a directory means every file under it (repeatable).",
    ),
    Setting(
        "reload-ignore",
        Kind.LIST,
        [],
        section=RELOAD,
        applies=Applies.STANDARD,
        metavar="GLOB",
        doc="With `py-autoreload`: a change to a path matching this glob (the whole path, "
        "or one of its names) does not reload (repeatable). Always ignored as well: "
        "__pycache__, *.pyc, *.pyo, .git, .hg, .svn, *.swp, *.swx, *~, .#*, #*#, 4913.",
    ),
    Setting(
        "reload-engine",
        Kind.CHOICE,
        "auto",
        section=RELOAD,
        applies=Applies.STANDARD,
        choices=("auto", "inotify", "poll"),
        doc="How `py-autoreload` watches: `auto` uses inotify, and the stat scan for files "
        "on network or FUSE filesystems or beyond the inotify watch limit; `poll` scans "
        "every file (for filesystems whose inotify events do not arrive, such as some "
        "bind mounts into containers or VMs); `inotify` uses inotify on every filesystem "
        "(and scans only what it cannot watch).",
    ),
    Setting(
        "autoreload-under-systemd",
        Kind.BOOL,
        False,
        section=RELOAD,
        applies=Applies.STANDARD,
        doc="Allow `py-autoreload` when started by systemd (INVOCATION_ID set), where it "
        "is refused otherwise: a production site reloads by trigger file or `systemctl "
        "reload`. Logged as a warning when used.",
    ),
    # --- control and logging -------------------------------------------------------
    Setting(
        "control-socket",
        Kind.STR,
        None,
        section=CONTROL,
        applies=Applies.STANDARD,
        metavar="PATH",
        doc="UNIX socket for sockactctl (a relative path means from the directory sockactd "
        "starts in). Default: $RUNTIME_DIRECTORY/control.sock when systemd sets "
        "RUNTIME_DIRECTORY (sockactd@.service: /run/sockactd/INSTANCE/control.sock); "
        "otherwise none: a server started by hand has a control socket only when this is "
        "set, so any number of them run side by side. It is bound before anything else: "
        "a path another server answers on, or one too long, ends the start with exit 78.",
    ),
    Setting(
        "log-level",
        Kind.CHOICE,
        "info",
        section=CONTROL,
        applies=Applies.MASTER,
        choices=("debug", "info", "warning", "error"),
        doc="Lowest level of messages written to stderr.",
    ),
    Setting(
        "access-log",
        Kind.BOOL,
        False,
        section=CONTROL,
        applies=Applies.WORKERS,
        doc="Log one line per request (method, path, status, bytes, duration).",
    ),
    # --- monitoring ------------------------------------------------------------------
    Setting(
        "metrics-socket",
        Kind.STR,
        None,
        section=MONITORING,
        applies=Applies.STANDARD,
        metavar="ADDR",
        doc="Serve Prometheus metrics (`GET /metrics`) from the master on this TCP "
        "address or UNIX path, never on the application's sockets. Under socket "
        "activation a socket named `metrics` is used instead. Needs prometheus_client.",
    ),
    Setting(
        "stats",
        Kind.STR,
        None,
        section=MONITORING,
        applies=Applies.STANDARD,
        metavar="ADDR",
        doc="uWSGI's stats server: the master writes uWSGI's stats JSON to every "
        "connection on this TCP address or UNIX path (for uwsgitop and uWSGI "
        "exporters). Under socket activation a socket named `stats` is used instead.",
    ),
    Setting(
        "stats-http",
        Kind.BOOL,
        False,
        section=MONITORING,
        applies=Applies.STANDARD,
        doc="Answer HTTP on the stats socket (`GET /`), as uWSGI's option does.",
    ),
)


def by_name(name: str) -> Setting:
    for setting in SETTINGS:
        if setting.name == name:
            return setting
    raise KeyError(name)
