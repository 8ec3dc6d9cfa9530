"""Reloads under load: sockactd's three modes vs uWSGI's and gunicorn's, same run, same app.

    .venv/bin/python bench/reload.py [--duration 20] [--reload-at 5] [--clients 6]
                                     [--apps versioned,slow_import,broken]
                                     [--servers sockactd,uwsgi,gunicorn] [--repeat 1]
                                     [--sockactd-log-level warning] [--write]

For each case, 2 workers on 127.0.0.1, `--clients` load processes sending one request
per new connection for --duration seconds (bench/loadgen.py). The app is a copy of
bench/apps/versioned.py in a temporary directory; `slow_import` adds a 1 s sleep to its
import. At --reload-at seconds that copy is rewritten to VERSION 2 -- or, for `broken`, to
code that raises at import -- and the reload is triggered:
  sockactd  `sockactctl --control-socket PATH reload --mode MODE --wait` (exit code kept);
            standard without --lazy-apps, workers and chain with it
  uWSGI     standard: SIGHUP (no --lazy-apps); workers / chain: --lazy-apps and the
            master FIFO commands `w` / `c`
  gunicorn  SIGHUP (sync workers, no --preload)
Reported: failed requests by kind, time from the trigger to 100% new version, lowest
successful requests/s in any one-second window (vs steady), the longest time without a
successful response, p99 of requests started during the reload vs steady.
`--write` replaces the `reload` section of bench/RESULTS.md.

`--repeat N` (N > 1) runs every case N times, in rounds (every case once, then again)
so that a drift in the machine's load hits all cases alike, and reports per case the
median and every run of the longest gap without a successful response (the "stall"
of issue 17), where in each run that gap began relative to the trigger, failures
summed and the median time to the new version; `--write` then replaces the
`reload-stall` section instead. The gap is looked for over the whole run after its
first second, so the control case (`none`, no reload) shows how long this machine
stalls without any reload.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, loadgen

MODULE = "benchapp:app"
# Not the machine's size: a chain reload replaces workers one 1 s import at a time, and the
# default --duration and --reload-at leave room for two (uWSGI and gunicorn get as many).
WORKERS = 2
# What an app adds to bench/apps/versioned.py after its `import os`: `slow_import` an import
# that takes one second (a large framework, a cold cache), `broken` (at the reload) code
# that raises at import.
SLOW_IMPORT = "import time\n\ntime.sleep(1.0)\n"
BROKEN_LINE = 'raise RuntimeError("broken on purpose by bench/reload.py")\n'


@dataclasses.dataclass(frozen=True)
class Case:
    server: str  # sockactd, uwsgi, gunicorn
    mode: str  # standard, workers, chain (gunicorn: HUP)
    app: str  # versioned, slow_import, broken (= versioned, then broken code)


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


def server_for(case: Case, port: int, appdir: Path, log_level: str) -> common.Server:
    bind = f"127.0.0.1:{port}"
    lazy = case.mode != "standard"
    if case.server == "sockactd":
        extra = () if log_level == "warning" else ("--log-level", log_level)  # the last one wins
        return common.sockactd(
            MODULE,
            http=bind,
            processes=WORKERS,
            lazy=lazy,
            control=appdir / "control.sock",
            pythonpath=appdir,
            extra=extra,
        )
    if case.server == "uwsgi":
        fifo = appdir / "fifo"
        return common.uwsgi(
            MODULE, http=bind, processes=WORKERS, lazy=lazy, pythonpath=appdir, fifo=fifo
        )
    return common.gunicorn(MODULE, bind=bind, workers=WORKERS, chdir=appdir)


def write_app(case: Case, appdir: Path, version: str, broken: bool = False) -> None:
    """bench/apps/versioned.py at `version` as appdir/benchapp.py, with what case.app adds."""
    text = (common.APPS / "versioned.py").read_text()
    text = text.replace('VERSION = "1"', f'VERSION = "{version}"')
    added = (SLOW_IMPORT if case.app == "slow_import" else "") + (BROKEN_LINE if broken else "")
    if added:
        head, found, tail = text.partition("\nimport os\n")
        if not found:
            raise RuntimeError("bench/apps/versioned.py has no `import os` line to add after")
        text = f"{head}\nimport os\n\n{added}{tail}"
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


def run_case(case: Case, args: argparse.Namespace, tmp: Path, run: int = 1) -> dict[str, object]:
    appdir = tmp / f"{case.server}-{case.mode}-{case.app}-{run}"
    appdir.mkdir()
    write_app(case, appdir, "1")
    port = common.free_port()
    server = server_for(case, port, appdir, args.sockactd_log_level)
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
    waited = None if fired.seconds is None or new is None else fired.at + fired.seconds
    steady = loadgen.rate(outcomes, steady_from, fired.at)
    lowest = loadgen.lowest_window_rate(outcomes, steady_from, load.until)
    gap_begin, gap_end = loadgen.gap_span(outcomes, steady_from, load.until)
    return {
        "ok": sum(1 for o in outcomes if o.kind is loadgen.Kind.OK),
        "failed": loadgen.failures(outcomes),
        "to_new": new,
        "served_new": sum(1 for o in outcomes if o.version == "2"),
        "old_after_wait": None if waited is None else _old_answers_after(outcomes, waited),
        "steady_rps": steady,
        "lowest_rps": lowest,
        "gap": gap_end - gap_begin,
        "gap_from": gap_begin - fired.at,  # where the longest gap began, from the trigger
        "reload_gap": loadgen.longest_gap(outcomes, fired.at, reload_to),
        "p99_steady": loadgen.p99(outcomes, steady_from, fired.at),
        "p99_reload": loadgen.p99(outcomes, fired.at, reload_to),
        "window": reload_to - fired.at,
    }


def _old_answers_after(outcomes: list[loadgen.Outcome], waited: float) -> int:
    """Answers from old code to requests started after `reload --wait` returned (01e6141: 0)."""
    return sum(
        1 for o in outcomes if o.kind is loadgen.Kind.OK and o.version != "2" and o.start > waited
    )


# ---------------------------------------------------------------- report


def render(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    """One line per run."""
    description = (
        f"{args.duration:g} s of load per case, reload triggered at t={args.reload_at:g} s, "
        f"{args.clients} client processes, one request per new connection, {WORKERS} workers. "
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
    return _report(description, common.markdown_table(header, [_row(row) for row in rows]), rows)


def _report(description: str, table: str, rows: list[dict[str, object]]) -> str:
    """The machine, `description`, `table`, the commands, then sockactctl's failures."""
    out = [*common.report_head(description), table, *_commands(rows)]
    messages = [_message(row) for row in rows]
    out += [m for m in messages if m]
    return "\n".join(out) + "\n"


def _commands(rows: list[dict[str, object]]) -> list[str]:
    out = []
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
        text = re.sub(r"/tmp/sockactd-reload-[^/]+/[^/ ]+", "$DIR", common.shown_argv(argv))
        out.append(f"- {case.server} {case.mode}: `{text}`; reload: `{fired.how}`")
    return common.commands_section(out)


def render_repeated(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    """One line per case: the stall's median and every run, in the order they ran."""
    description = (
        f"{args.repeat} runs per case in interleaved rounds; each run: {args.duration:g} s of "
        f"load, reload triggered at t={args.reload_at:g} s, {args.clients} client processes, "
        f"one request per new connection, {WORKERS} workers. `stall` = longest time with no "
        "successful response anywhere in the run after its first second; `at` = where "
        "that stretch began, in seconds from the trigger (negative: before it); `in "
        "reload` = the longest such stretch inside [trigger, trigger + max(1 s, to new, "
        "sockactctl time)]; mode `none` is the control, the same load and no reload. "
        "Failed requests summed over the runs; `to new` and `ctl` medians; `ctl after "
        "old` = how long `sockactctl reload --wait` returned after the last response from "
        "old code (`ctl` minus `to new`), i.e. what the reload waited for once the new "
        "generation served everything (negative: a request an old worker had accepted "
        "before it stopped accepting ended after that); `old after ctl` = responses from "
        "old code to requests started after `--wait` returned, summed (0 is the contract).\n"
    )
    by_case: dict[Case, list[dict[str, object]]] = {}
    for row in rows:
        case = row["case"]
        assert isinstance(case, Case)
        by_case.setdefault(case, []).append(row)
    header = [
        "app",
        "server",
        "mode",
        "stall ms median",
        "stall ms, every run",
        "at s, every run",
        "in reload ms, every run",
        "failed",
        "to new s",
        "ctl exits (s)",
        "ctl after old ms, every run",
        "old after ctl",
        "load avg",
    ]
    table = [_repeated_row(case, runs) for case, runs in by_case.items()]
    return _report(description, common.markdown_table(header, table), rows)


def _summary(run: dict[str, object]) -> dict[str, Any]:
    """What analyse() found in one run (its values' types vary by key)."""
    summary = run["summary"]
    assert isinstance(summary, dict)
    return summary


def _repeated_row(case: Case, runs: list[dict[str, object]]) -> list[object]:
    summaries = [_summary(run) for run in runs]
    fired = [run["trigger"] for run in runs]
    assert all(isinstance(f, Trigger) for f in fired)
    gaps = [1000 * float(s["gap"]) for s in summaries]
    where = [float(s["gap_from"]) for s in summaries]
    inside = [1000 * float(s["reload_gap"]) for s in summaries]
    failed = sum(sum(s["failed"].values()) for s in summaries)
    news = [s["to_new"] for s in summaries if s["to_new"] is not None]
    never = sum(1 for s in summaries if s["to_new"] is None)
    if case.mode == "none" or case.app == "broken":
        to_new = "n/a"
    else:
        to_new = f"{statistics.median(news):.2f}" if news else "never"
        to_new += f" ({never} never)" if never and news else ""
    exits = [f for f in fired if isinstance(f, Trigger) and f.exit_code is not None]
    ctl = "-" if not exits else (
        ",".join(str(f.exit_code) for f in exits)
        + f" ({statistics.median(f.seconds or 0.0 for f in exits):.2f})"
    )  # fmt: skip
    after_old = [
        f"{1000 * (f.seconds - s['to_new']):.0f}"
        for f, s in zip(fired, summaries, strict=True)
        if isinstance(f, Trigger) and f.seconds is not None and s["to_new"] is not None
    ]
    late = [s["old_after_wait"] for s in summaries if s["old_after_wait"] is not None]
    dead = sum(1 for run in runs if not run["alive"])
    loads = [float(str(run["load"])) for run in runs]
    median = statistics.median(gaps)
    flag = f"**{median:.0f}**" if median > STALL_TARGET_MS else f"{median:.0f}"
    return [
        case.app,
        case.server,
        case.mode,
        flag,
        " / ".join(f"{g:.0f}" for g in gaps),
        " / ".join(f"{w:+.2f}" for w in where),
        " / ".join(f"{g:.0f}" for g in inside),
        f"{failed}" + (f", **{dead} died**" if dead else ""),
        to_new,
        ctl,
        " / ".join(after_old) or "-",
        (f"**{sum(late)}**" if sum(late) else "0") if late else "-",
        f"{min(loads):.1f}-{max(loads):.1f}",
    ]


STALL_TARGET_MS = 50.0  # issue 17: longest stretch with no 2xx, median of 5 runs


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
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per case, in rounds; > 1: the stall table"
    )
    parser.add_argument(
        "--sockactd-log-level",
        default="warning",
        help="sockactd's --log-level (info: its reload phases in each run's log tail)",
    )
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    rows = []
    todo = cases(args.servers.split(","), args.apps.split(","), not args.no_control)
    with tempfile.TemporaryDirectory(prefix="sockactd-reload-") as tmp_name:
        common.pin_sockactd(Path(tmp_name))
        for run in range(1, args.repeat + 1):
            for case in todo:
                print(f"# run {run}/{args.repeat}: {case}", file=sys.stderr, flush=True)
                rows.append(run_case(case, args, Path(tmp_name), run))
                _progress(rows[-1])
                time.sleep(1)  # let TIME_WAIT and the previous server's exit settle
    if args.repeat == 1:
        report = render(rows, args)
        print(report)
        if args.write:
            common.write_section("reload", "## Reloads under load\n\n" + report)
        return
    report = render_repeated(rows, args)
    print(report)
    if args.write:
        title = "## Reload stall with a 1 s import, median of repeated runs (issue 17)\n\n"
        common.write_section("reload-stall", title + report)


def _progress(row: dict[str, object]) -> None:
    """One run's row on stderr; the server's log tail when it failed or stalled too long."""
    fired, summary = row["trigger"], row["summary"]
    assert isinstance(fired, Trigger) and isinstance(summary, dict)
    stalled = 1000 * float(summary["gap"]) > STALL_TARGET_MS
    if not row["alive"] or fired.exit_code not in (None, 0) or stalled:
        print(f"server log tail:\n{row['log_tail']}", file=sys.stderr, flush=True)
    print(common.markdown_table(["x"], [_row(row)]), file=sys.stderr, flush=True)
    print(f"longest gap began {summary['gap_from']:+.3f} s from the trigger", file=sys.stderr)


if __name__ == "__main__":
    main()
