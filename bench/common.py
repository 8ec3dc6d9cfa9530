"""Shared pieces of the benchmark scripts: server command lines, process lifetime, wrk, results.

Every server is started here as a child in its own session and stopped by its own PID
(then its process group, which only it and its workers are in). Nothing here imports
sockactd: the servers under test run as separate processes, exactly as an operator
runs them. Pure helpers (wrk output parsing, RESULTS.md section merging, markdown
tables) have unit tests in tests/unit/test_bench_common.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Final

ROOT: Final = Path(__file__).resolve().parent.parent
APPS: Final = ROOT / "bench" / "apps"
RESULTS: Final = ROOT / "bench" / "RESULTS.md"
VENV_BIN: Final = ROOT / ".venv" / "bin"
PYTHON: Final = str(VENV_BIN / "python")
UWSGI: Final = shutil.which("uwsgi") or "/usr/bin/uwsgi"
WRK: Final = shutil.which("wrk") or "/usr/bin/wrk"

# The request every load generator here sends: the apps in bench/apps answer any path.
GET_KEEPALIVE: Final = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
GET_CLOSE: Final = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"

# Variables that would make a child believe systemd started it, or change sockactd's config.
_SCRUB_PREFIXES: Final = ("SOCKACTD_", "LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_", "JOURNAL_STREAM")


# ---------------------------------------------------------------- the code under test

# The checkout is shared with developers who commit while a benchmark runs, and a
# standard reload re-executes sockactd from disk: so every run uses an exported copy
# of one commit, installed into a virtualenv of its own (pin_sockactd).
_pinned: dict[str, str] = {}
_override: list[str] = []  # use_sockactd_command()


def pinned_rounds(refs: Sequence[str], rounds: int) -> Iterator[tuple[str, str, Path]]:
    """(ref, commit, tmp) for each ref in turn, `rounds` times: sockactd at ref pinned in tmp.

    Rounds interleave the refs (A, B, A, B, ...) so drifts in the machine's load hit all alike;
    tmp lives until the caller asks for the next one.
    """
    for number in range(rounds):
        for ref in refs:
            with tempfile.TemporaryDirectory(prefix="sockactd-bench-") as tmp_name:
                tmp = Path(tmp_name)
                commit = pin_sockactd(tmp, ref)
                print(f"# round {number + 1}: {ref} ({commit})", file=sys.stderr, flush=True)
                yield ref, commit, tmp


def pin_sockactd(tmp: Path, ref: str = "HEAD") -> str:
    """Install sockactd at `ref` into tmp for every server started later; its commit.

    The copy is byte-compiled and put in a virtualenv of its own whose other packages
    (httptools, gunicorn, ...) come from .venv through a .pth path entry: that is how
    an installed sockactd looks to Python. .venv itself holds sockactd as an editable
    install, whose import finder alone adds ~15 ms to every interpreter start-up.
    sockactd starts through packaging/bin/sockactd, the launcher the packages install.
    """
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    src = tmp / "src"
    src.mkdir()
    has_launcher = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}:packaging/bin/sockactd"],
        capture_output=True,
    ).returncode == 0  # fmt: skip
    paths = ["sockactd", "packaging/bin"] if has_launcher else ["sockactd"]
    archive = subprocess.Popen(
        ["git", "-C", str(ROOT), "archive", commit, *paths], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(src)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {commit} failed")
    # The servers run with PYTHONDONTWRITEBYTECODE=1, so without this every start would
    # compile sockactd anew; an installed package is compiled once.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(src / "sockactd")], check=True)
    python = _installed_python(tmp / "venv", first=src)
    launcher = src / ("packaging/bin/sockactd" if has_launcher else "sockactd/__main__.py")
    _pinned.update(python=python, launcher=str(launcher), commit=commit)
    return commit


_ASK_PATHS = (
    "import sys, sysconfig; print(sys._base_executable); print(sysconfig.get_path('purelib'))"
)


def _python_paths(python: str) -> tuple[str, str]:
    """(base interpreter, site-packages directory) of `python`."""
    out = subprocess.run([python, "-c", _ASK_PATHS], capture_output=True, text=True, check=True)
    base, site = out.stdout.splitlines()[:2]
    return base, site


def _installed_python(venv: Path, first: Path) -> str:
    """A virtualenv on .venv's interpreter that sees `first`, then .venv's packages."""
    base, site = _python_paths(PYTHON)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    own_site = _python_paths(str(venv / "bin" / "python"))[1]
    # A path line in a .pth file only extends sys.path: .venv's own .pth files (the
    # editable finder) are not run, as they would not be for an installed package.
    Path(own_site, "sockactd-bench.pth").write_text(f"{first}\n{site}\n")
    return str(venv / "bin" / "python")


def server_python() -> str:
    """The interpreter servers run on: the pinned install's, else .venv's."""
    return _pinned.get("python", PYTHON)


def use_sockactd_command(argv: Sequence[str]) -> None:
    """Start sockactd with `argv` from now on, e.g. ["/usr/bin/sockactd"] of an installed .deb."""
    _override[:] = list(argv)


def sockactd_command() -> list[str]:
    if _override:
        return list(_override)
    if _pinned:
        return [_pinned["python"], _pinned["launcher"]]
    return [PYTHON, "-m", "sockactd"]


def sockactd_env() -> tuple[tuple[str, str], ...]:
    return ()


def sockactd_version() -> str:
    return f"commit {_pinned['commit']} (installed copy)" if _pinned else "the live checkout"


def sockactctl(*args: str) -> list[str]:
    return [server_python(), "-m", "sockactd", "ctl", *args]


# ---------------------------------------------------------------- the machine's size

# Where a bench measures what the machine can serve, its worker count and its load
# generator's threads follow the CPUs it may use, so the scripts run unchanged on a
# bigger machine; on the 2-CPU VM every result so far comes from, they give what those
# runs used (2 workers, 1 wrk thread). Where the count is part of a scenario (an issue's
# "2 workers", a reload's timing), the bench names it itself.


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (taskset, a cgroup cpuset), which
    os.cpu_count() does not see."""
    return len(os.sched_getaffinity(0))


def machine_workers() -> int:
    """Workers per server where a bench measures the machine's capacity: one per usable CPU."""
    return usable_cpus()


def wrk_threads() -> int:
    """wrk threads beside machine_workers() workers on the same CPUs: one per two CPUs."""
    return max(1, usable_cpus() // 2)


# ---------------------------------------------------------------- command lines


@dataclasses.dataclass(frozen=True)
class Server:
    """How to start one server under test and how to stop it."""

    name: str  # "sockactd", "gunicorn", "uwsgi" (+ a suffix for a variant)
    argv: tuple[str, ...]
    stop_signal: signal.Signals = signal.SIGTERM
    env: tuple[tuple[str, str], ...] = ()


def sockactd(
    module: str,
    *,
    http: str | None = None,
    uwsgi: str | None = None,
    processes: int = 2,
    lazy: bool = False,
    control: Path | None = None,
    pythonpath: Path = APPS,
    extra: Sequence[str] = (),
) -> Server:
    argv = [*sockactd_command(), "--processes", str(processes), "--log-level", "warning"]
    argv += ["--pythonpath", str(pythonpath)]
    if http:
        argv += ["--http-socket", http]
    if uwsgi:
        argv += ["--socket", uwsgi]
    if lazy:
        argv.append("--lazy-apps")
    if control is not None:
        argv += ["--control-socket", str(control)]
    return Server("sockactd", (*argv, *extra, module), signal.SIGTERM, sockactd_env())


def gunicorn(
    module: str, *, bind: str | None, workers: int = 2, chdir: Path = APPS, threads: int = 0
) -> Server:
    """gunicorn's sync workers, or its gthread workers (keep-alive) with `threads` > 0."""
    argv = [server_python(), str(VENV_BIN / "gunicorn"), "--workers", str(workers)]
    if threads:
        argv += ["--worker-class", "gthread", "--threads", str(threads)]
    else:
        argv += ["--worker-class", "sync"]
    argv += ["--chdir", str(chdir), "--log-level", "warning"]
    if bind:
        argv += ["--bind", bind]
    return Server("gunicorn", (*argv, module), signal.SIGTERM)


def uwsgi(
    module: str,
    *,
    http: str | None = None,
    http11: str | None = None,
    uwsgi_socket: str | None = None,
    processes: int = 2,
    lazy: bool = False,
    pythonpath: Path = APPS,
    fifo: Path | None = None,
    activated: bool = False,
    threads: int = 0,
) -> Server:
    argv = [UWSGI, "--plugin", "python3", "--master", "--processes", str(processes)]
    if threads:
        argv += ["--threads", str(threads)]
    argv += ["--pythonpath", str(pythonpath), "--chdir", str(pythonpath), "--module", module]
    argv += ["--disable-logging", "--die-on-term"]
    if http:
        argv += ["--http-socket", http]
    if http11:  # uWSGI's HTTP/1.1 socket: keeps connections alive (--http-socket closes them)
        argv += ["--http11-socket", http11]
    if uwsgi_socket:
        argv += ["--socket", uwsgi_socket]
    if activated:
        # uWSGI takes systemd's fds as uwsgi-protocol sockets unless told the default protocol
        argv += ["--protocol", "http"]
    if lazy:
        argv.append("--lazy-apps")
    if fifo is not None:
        argv += ["--master-fifo", str(fifo)]
    return Server("uwsgi", tuple(argv), signal.SIGINT)


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a rewritten app file must never hit a stale .pyc
    env.update(extra or {})
    return env


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Running:
    """A started server: its Popen, its log file; `stop()` by PID, then its own group."""

    def __init__(self, server: Server, log_path: Path, argv: Sequence[str] | None = None) -> None:
        self.server = server
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.process = subprocess.Popen(
            list(argv or server.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=clean_environ(dict(server.env)),
            # Not the checkout: `python -m sockactd` (ctl, a standard reload's re-exec) puts the
            # working directory first on sys.path, and the checkout's sockactd/ would win.
            cwd=log_path.parent,
            start_new_session=True,  # its own group: a final SIGKILL reaches its workers too
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, self.server.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # leftovers (a worker that outlived its master, or a master that ignored us)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@contextlib.contextmanager
def running(
    server: Server, log_path: Path, port: int | None, timeout: float = 20.0
) -> Iterator[Running]:
    """Start `server`, wait until `port` accepts (when given), stop it on exit."""
    proc = Running(server, log_path)
    try:
        if port is not None:
            wait_for_port(proc, port, timeout)
        yield proc
    finally:
        proc.stop()


def wait_for_port(proc: Running, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.server.name} exited:\n{proc.log_tail()}")
        if http_ok(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.server.name} did not answer on {port}:\n{proc.log_tail()}")


def http_ok(port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(GET_CLOSE)
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (via /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo += [int(child) for child in children.read().split()]
    return found


def cpu_counters(pids: list[int]) -> tuple[int, int, int]:
    """(ns on CPU, voluntary switches, involuntary switches) of every thread of `pids`."""
    ns = voluntary = involuntary = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                    ns += int(stat.read().split()[0])
                with open(f"/proc/{pid}/task/{task}/status") as status:
                    for line in status:
                        if line.startswith("voluntary_ctxt_switches"):
                            voluntary += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches"):
                            involuntary += int(line.split()[1])
    return ns, voluntary, involuntary


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss line for {pid}")


# ---------------------------------------------------------------- wrk


@dataclasses.dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    socket_errors: tuple[int, int, int, int]  # wrk's connect, read, write, timeout counts
    non_2xx: int

    def errors_text(self) -> str:
        """`0`, or what went wrong; wrk counts a server's close after a response as `read`."""
        parts = [
            f"{n} {kind}" for kind, n in zip(_ERROR_KINDS, self.socket_errors, strict=True) if n
        ]
        if self.non_2xx:
            parts.append(f"{self.non_2xx} non-2xx")
        return ", ".join(parts) or "0"


_ERROR_KINDS: Final = ("connect", "read", "write", "timeout")


_UNIT_MS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNIT_MS[match[2]]


def parse_wrk(output: str) -> WrkResult:
    """Requests/s, p50, p99, request count and errors from `wrk --latency` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise ValueError(f"cannot parse wrk output:\n{output}")
    sock = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    counts = (0, 0, 0, 0) if sock is None else tuple(int(n) for n in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        float(rps[1]),
        _to_ms(p50[1]),
        _to_ms(p99[1]),
        int(total[1]),
        (counts[0], counts[1], counts[2], counts[3]),
        int(non2xx[1]) if non2xx else 0,
    )


def median_result(results: Sequence[WrkResult]) -> WrkResult:
    """One result for repeated runs: median rates and latencies, summed counts."""
    errors = tuple(sum(r.socket_errors[i] for r in results) for i in range(4))
    return WrkResult(
        statistics.median(r.requests_per_s for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.requests for r in results),
        (errors[0], errors[1], errors[2], errors[3]),
        sum(r.non_2xx for r in results),
    )


def spread(results: Sequence[WrkResult]) -> str:
    """`median (min-max)` requests/s, or just the value for one run."""
    rates = sorted(r.requests_per_s for r in results)
    median = statistics.median(rates)
    if len(rates) == 1:
        return f"{median:,.0f}"
    return f"{median:,.0f} ({rates[0]:,.0f}-{rates[-1]:,.0f})"


def wrk_argv(url: str, duration: float, connections: int, threads: int, close: bool) -> list[str]:
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    return [*argv, url]


def run_wrk(argv: Sequence[str], duration: float) -> WrkResult:
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=duration + 30, check=True
    )
    return parse_wrk(done.stdout)


# ---------------------------------------------------------------- reporting


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def merge_section(document: str, name: str, body: str) -> str:
    """Replace the `<!-- bench:NAME -->` ... `<!-- /bench:NAME -->` block, or append it."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    head, found, rest = document.partition(start)
    if found:
        _, closed, tail = rest.partition(end)
        if not closed:
            raise ValueError(f"section {name} has no end marker")
        return head + block + tail
    sep = (
        ""
        if not document or document.endswith("\n\n")
        else ("\n" if document.endswith("\n") else "\n\n")
    )
    return document + sep + block + "\n"


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    document = path.read_text() if path.exists() else "# sockactd benchmark results\n\n"
    path.write_text(merge_section(document, name, body))


def this_command() -> str:
    """How this script was run, as RESULTS.md quotes it: `.venv/bin/python bench/X.py ARGS`."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return f"`{shlex.join(['.venv/bin/python', str(shown), *sys.argv[1:]])}`"


def publish(report: str, section: str, title: str, write: bool) -> None:
    """Print `report`; with `write`, make it RESULTS.md's `section`, headed `## title`."""
    print(report)
    if write:
        write_section(section, f"## {title}\n\n{report}")


def report_head(description: str) -> list[str]:
    """A report's first lines: the machine (when, what, how loaded), then what each run did."""
    return [f"Machine: {machine_summary()}\n", description]


def shown_argv(argv: Sequence[str]) -> str:
    """A command line as RESULTS.md quotes it: paths inside the checkout relative to it."""
    return shlex.join(argv).replace(str(ROOT) + "/", "")


def commands_section(items: Sequence[str]) -> list[str]:
    """A report's closing `Commands` list: one line per item, then this script's own command."""
    heading = "\nCommands (ports and temporary paths vary per run):\n"
    return [heading, *items, f"- this table: `{shlex.join(sys.argv)}`\n"]


def machine_summary() -> str:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    python = subprocess.run([PYTHON, "--version"], capture_output=True, text=True).stdout.strip()
    uwsgi_version = _version([UWSGI, "--version"])
    gunicorn_version = _version([str(VENV_BIN / "gunicorn"), "--version"])
    wrk_version = _version([WRK, "-v"]).split(" [")[0]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "/".join(f"{n:.2f}" for n in os.getloadavg())
    return (
        f"{now}; sockactd {sockactd_version()}; load average {load} (the machine is shared); "
        f"nproc {os.cpu_count()}{_usable_note()}, "
        f"CPU {cpu}, kernel {platform.release()}; "
        f"{python} (sockactd, {gunicorn_version}); uWSGI {uwsgi_version} "
        f"(Debian, embeds {_version(['/usr/bin/python3', '--version'])}); {wrk_version}"
    )


def _usable_note() -> str:
    """` (N usable)` when this process may run on fewer CPUs than the machine has."""
    usable = usable_cpus()
    return "" if usable == os.cpu_count() else f" ({usable} usable)"


def _version(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    except OSError:
        return ""
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""
    )


def pinned() -> dict[str, str]:
    """What pin_sockactd() pinned last (commit, python, launcher), for use_pinned()."""
    return dict(_pinned)


def use_pinned(pin: Mapping[str, str]) -> None:
    """Start servers from an earlier pin again (two commits compared in one run)."""
    _pinned.clear()
    _pinned.update(pin)
