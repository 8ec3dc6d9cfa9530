"""Reloads under load: sockactd's three modes vs uWSGI's and gunicorn's, same run, same app.

    .venv/bin/python bench/reload.py [--duration 20] [--reload-at 5] [--clients 6]
                                     [--apps versioned,slow_import,broken]
                                     [--servers sockactd,uwsgi,gunicorn] [--write]

For each case, 2 workers on 127.0.0.1, `--clients` load processes sending one request
per new connection for --duration seconds (bench/loadgen.py). At --reload-at seconds the
app file (a copy of bench/apps/<app>.py in a temporary directory) is rewritten to
VERSION 2 -- or, for `broken`, to code that raises at import -- and the reload is
triggered:
  sockactd  `sockactctl --control-socket PATH reload --mode MODE --wait` (exit code kept);
            standard without --lazy-apps, workers and chain with it
  uWSGI     standard: SIGHUP (no --lazy-apps); workers / chain: --lazy-apps and the
            master FIFO commands `w` / `c`
  gunicorn  SIGHUP (sync workers, no --preload)
Reported: failed requests by kind, time from the trigger to 100% new version, lowest
successful requests/s in any one-second window (vs steady), the longest time without a
successful response, p99 of requests started during the reload vs steady.
`--write` replaces the `reload` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, loadgen

MODULE = "benchapp:app"
BROKEN_LINE = 'raise RuntimeError("broken on purpose by bench/reload.py")\n'


@dataclasses.dataclass(frozen=True)
class Case:
    server: str  # sockactd, uwsgi, gunicorn
    mode: str  # standard, workers, chain (gunicorn: HUP)
    app: str  # versioned, slow_import, broken (= versioned, then broken code)

    @property
    def template(self) -> Path:
        return common.APPS / ("slow_import.py" if self.app == "slow_import" else "versioned.py")


@dataclasses.dataclass
class Trigger:
    at: float = 0.0  # monotonic time of the trigger
    how: str = ""
    exit_code: int | None = None  # sockactctl's
    seconds: float | None = None  # how long sockactctl --wait took
    message: str = ""


def cases(servers: list[str], apps: list[str], control: bool) -> list[Case]:
    modes = {"sockactd": MODES, "uwsgi": MODES, "gunicorn": ("HUP",)}
    # the control case: same load, no reload -- the noise floor of every column
    first = [Case("sockactd", "none", "versioned")] if control else []
    return first + [Case(s, m, a) for a in apps for s in servers for m in modes[s]]


MODES = ("standard", "workers", "chain")


def server_for(case: Case, port: int, appdir: Path) -> common.Server:
    bind = f"127.0.0.1:{port}"
    lazy = case.mode != "standard"
    if case.server == "sockactd":
        return common.sockactd(
            MODULE, http=bind, lazy=lazy, control=appdir / "control.sock", pythonpath=appdir
        )
    if case.server == "uwsgi":
        return common.uwsgi(MODULE, http=bind, lazy=lazy, pythonpath=appdir, fifo=appdir / "fifo")
    return common.gunicorn(MODULE, bind=bind, chdir=appdir)


def write_app(case: Case, appdir: Path, version: str, broken: bool = False) -> None:
    text = case.template.read_text().replace('VERSION = "1"', f'VERSION = "{version}"')
    if broken:
        text = text.replace("\nimport os\n", "\nimport os\n\n" + BROKEN_LINE, 1)
    target = appdir / "benchapp.py"
    temporary = appdir / "benchapp.py.new"
    temporary.write_text(text)
    os.replace(temporary, target)  # never a half-written module for a worker that imports now


def trigger(case: Case, proc: common.Running, appdir: Path, budget: float) -> Trigger:
    result = Trigger(at=time.monotonic())
    if case.mode == "none":
        result.how = "(no reload)"
    elif case.server == "sockactd":
        options = ["reload", "--mode", case.mode, "--wait", "--timeout", f"{budget:g}"]
        argv = common.sockactctl("--control-socket", str(appdir / "control.sock"), *options)
        result.how = shlex.join(["sockactctl", "--control-socket", "PATH", *options])
        env = common.clean_environ(dict(common.sockactd_env()))
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=budget + 10, env=env, cwd=appdir
        )
        result.exit_code = done.returncode
        result.seconds = time.monotonic() - result.at
        result.message = (done.stdout + done.stderr).strip().replace("\n", " ")
    elif case.server == "uwsgi" and case.mode != "standard":
        command = "w" if case.mode == "workers" else "c"
        with open(appdir / "fifo", "w") as fifo:
            fifo.write(command)
        result.how = f"echo {command} > FIFO"
    else:
        os.kill(proc.pid, signal.SIGHUP)
        result.how = "kill -HUP MASTER"
    return result


def run_case(case: Case, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    appdir = tmp / f"{case.server}-{case.mode}-{case.app}"
    appdir.mkdir()
    write_app(case, appdir, "1")
    port = common.free_port()
    server = server_for(case, port, appdir)
    with common.running(server, appdir / "server.log", port, timeout=30) as proc:
        load = loadgen.Load(port, args.duration, args.clients)
        time.sleep(max(load.started + args.reload_at - time.monotonic(), 0))
        if case.mode != "none":
            write_app(case, appdir, "2", broken=case.app == "broken")
        fired = trigger(case, proc, appdir, budget=args.duration)
        outcomes = load.join()
        alive = proc.alive()
        log_tail = proc.log_tail(25)
    return {
        "case": case,
        "argv": server.argv,
        "trigger": fired,
        "alive": alive,
        "summary": analyse(outcomes, load, fired, case),
        "log_tail": log_tail,
        "load": os.getloadavg()[0],  # the machine is shared: say how busy it was
    }


def analyse(
    outcomes: list[loadgen.Outcome], load: loadgen.Load, fired: Trigger, case: Case
) -> dict[str, object]:
    steady_from = load.started + 1.0
    new = None if case.app == "broken" else loadgen.time_to_new(outcomes, fired.at, "2")
    window = max(1.0, new or 0.0, fired.seconds or 0.0)
    reload_to = min(fired.at + window, load.until)
    steady = loadgen.rate(outcomes, steady_from, fired.at)
    lowest = loadgen.lowest_window_rate(outcomes, steady_from, load.until)
    return {
        "ok": sum(1 for o in outcomes if o.kind is loadgen.Kind.OK),
        "failed": loadgen.failures(outcomes),
        "to_new": new,
        "served_new": sum(1 for o in outcomes if o.version == "2"),
        "steady_rps": steady,
        "lowest_rps": lowest,
        "gap": loadgen.longest_gap(outcomes, steady_from, load.until),
        "p99_steady": loadgen.p99(outcomes, steady_from, fired.at),
        "p99_reload": loadgen.p99(outcomes, fired.at, reload_to),
        "window": reload_to - fired.at,
    }


# ---------------------------------------------------------------- report


def render(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    out = [f"Machine: {common.machine_summary()}\n"]
    out.append(
        f"{args.duration:g} s of load per case, reload triggered at t={args.reload_at:g} s, "
        f"{args.clients} client processes, one request per new connection, 2 workers. "
        "`to new` = trigger to the end of the last response from old code; `lowest 1 s` = "
        "fewest successful responses in any one-second window after the first second; "
        "`gap` = longest time with no successful response; p99 `reload` = requests started "
        "in [trigger, trigger + max(1 s, to new, sockactctl time)]. Mode `none` is the "
        "control: the same load and no reload, i.e. the noise floor of this machine.\n"
    )
    header = [
        "app",
        "server",
        "mode",
        "ok",
        "failed (refused/reset/timeout/5xx/other)",
        "to new s",
        "steady req/s",
        "lowest 1 s req/s (%)",
        "gap ms",
        "p99 steady ms",
        "p99 reload ms",
        "ctl exit (s)",
        "alive after",
        "load avg",
    ]
    table = [_row(row) for row in rows]
    out.append(common.markdown_table(header, table))
    out.append("\nCommands (ports and temporary paths vary per run):\n")
    seen = set()
    for row in rows:
        case, fired = row["case"], row["trigger"]
        assert isinstance(case, Case) and isinstance(fired, Trigger)
        key = (case.server, case.mode)
        if key in seen:
            continue
        seen.add(key)
        argv = row["argv"]
        assert isinstance(argv, tuple)
        text = shlex.join(argv).replace(str(common.ROOT) + "/", "")
        text = re.sub(r"/tmp/sockactd-reload-[^/]+/[^/ ]+", "$DIR", text)
        out.append(f"- {case.server} {case.mode}: `{text}`; reload: `{fired.how}`")
    out.append(f"- this table: `{shlex.join(sys.argv)}`\n")
    messages = [_message(row) for row in rows]
    out += [m for m in messages if m]
    return "\n".join(out) + "\n"


def _row(row: dict[str, object]) -> list[object]:
    case, fired, summary = row["case"], row["trigger"], row["summary"]
    assert isinstance(case, Case) and isinstance(fired, Trigger) and isinstance(summary, dict)
    failed = summary["failed"]
    total = sum(failed.values())
    kinds = "/".join(str(failed[k]) for k in loadgen.FAILURE_KINDS)
    steady, lowest = summary["steady_rps"], summary["lowest_rps"]
    pct = f"{100 * lowest / steady:.0f}%" if steady else "-"
    ctl = "-" if fired.exit_code is None else f"{fired.exit_code} ({fired.seconds:.2f})"
    return [
        case.app,
        case.server,
        case.mode,
        summary["ok"],
        f"**{total}** ({kinds})",
        _seconds(summary["to_new"], case, summary["served_new"]),
        f"{steady:,.0f}",
        f"{lowest:,.0f} ({pct})",
        f"{1000 * summary['gap']:.0f}",
        _ms(summary["p99_steady"]),
        _ms(summary["p99_reload"]),
        ctl,
        "yes" if row["alive"] else "**no**",
        f"{row['load']:.1f}",
    ]


def _seconds(value: object, case: Case, served_new: object) -> str:
    if case.app == "broken":
        return f"n/a ({served_new} from broken code)"
    if case.mode == "none":
        return "n/a"
    return "never" if value is None else f"{value:.2f}"


def _ms(value: object) -> str:
    return "-" if value is None else f"{1000 * float(str(value)):.1f}"


def _message(row: dict[str, object]) -> str:
    case, fired = row["case"], row["trigger"]
    assert isinstance(case, Case) and isinstance(fired, Trigger)
    if fired.exit_code in (None, 0):
        return ""
    return f"- sockactctl, {case.mode}/{case.app}: exit {fired.exit_code}: {fired.message}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--reload-at", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--apps", default="versioned,slow_import,broken")
    parser.add_argument("--servers", default="sockactd,uwsgi,gunicorn")
    parser.add_argument("--no-control", action="store_true", help="skip the no-reload case")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sockactd-reload-") as tmp_name:
        common.pin_sockactd(Path(tmp_name))
        for case in cases(args.servers.split(","), args.apps.split(","), not args.no_control):
            print(f"# {case}", file=sys.stderr, flush=True)
            rows.append(run_case(case, args, Path(tmp_name)))
            fired = rows[-1]["trigger"]
            assert isinstance(fired, Trigger)
            if not rows[-1]["alive"] or fired.exit_code not in (None, 0):
                print(f"server log tail:\n{rows[-1]['log_tail']}", file=sys.stderr, flush=True)
            print(common.markdown_table(["x"], [_row(rows[-1])]), file=sys.stderr, flush=True)
            time.sleep(1)  # let TIME_WAIT and the previous server's exit settle
    report = render(rows, args)
    print(report)
    if args.write:
        common.write_section("reload", "## Reloads under load\n\n" + report)


if __name__ == "__main__":
    main()
