"""Cold start under systemd-socket-activate: the .deb's sockactd, the virtualenv's, and uWSGI.

    .venv/bin/python bench/cold_start.py [--runs 21] [--deb FILE] [--write]
    .venv/bin/python bench/cold_start.py --build-deb FILE      # build HEAD's .deb, then exit
    .venv/bin/python bench/cold_start.py --httptools LABEL=DIR  # one more venv row, below
    .venv/bin/python bench/cold_start.py --deb-also LABEL=FILE  # one more .deb row (before/after)

Issue 17's target: both install layouts start at or below uWSGI on an idle machine.
One run: `systemd-socket-activate -l 127.0.0.1:PORT --fdname=http <server>`, then the
time from our connect() to the first response byte of `GET /` (bench/apps/hello.py,
2 workers); systemd-socket-activate starts the server on that first connection, so
the time is interpreter start, imports, taking the socket, forking the workers and
the first answer -- what a client waits for on an on-demand socket. The three servers
take turns (deb, venv, uwsgi, deb, venv, ...) so a drift in the machine's load hits
them alike; reported: median, min-max, quartiles of --runs runs each, and the median of
each server's differences to uWSGI's run of the same turn.

The layouts:
  deb   the .deb of the commit measured, built as `make deb` builds it (a copy of
        packaging/debian in a `git archive` of HEAD, `dpkg-buildpackage -us -uc -b`
        on the system PATH) except that its build-time unit tests are skipped
        (DEB_BUILD_OPTIONS=nocheck: the suite runs them; a benchmark needs the files).
        It is NOT installed: the test suite's package sandboxes overlay this host's
        dpkg database, and an installed sockactd would show up in them. Instead
        `dpkg-deb -x` unpacks it into a temporary root, its Python files are
        byte-compiled with /usr/bin/python3 (what the postinst's py3compile does), and
        the root's /usr/bin/sockactd (packaging/bin/sockactd, `#!/usr/bin/python3`)
        runs with PYTHONPATH=<root>/usr/lib/python3/dist-packages. So the interpreter,
        the launcher, the byte-code and the dependencies are an installed copy's:
        Debian's python3 and the python3-* packages the .deb depends on
        (python3-httptools, python3-sdnotify, python3-pyinotify, installed by
        scripts/setup). The one difference: sockactd's directory comes first on
        sys.path instead of after the standard library, which costs one more
        directory listing at start-up.
  venv  sockactd as bench/throughput.py runs it: an exported copy of HEAD, byte-
        compiled, in a virtualenv of its own on .venv's packages (httptools from
        PyPI), started through packaging/bin/sockactd (common.pin_sockactd).
  uwsgi Debian's uWSGI with its python3 plugin, `--protocol http` on systemd's fd.
  venv-debian-httptools
        the venv above with Debian's python3-httptools (0.1.1 on bookworm) ahead of
        .venv's on its path (PYTHONPATH names a directory holding only a link to it):
        it differs from `venv` in the httptools build alone and from `deb` in the
        install layout alone, so it says which of the two makes the venv slower.
        Only where /usr/lib/python3/dist-packages/httptools exists.
  --httptools LABEL=DIR adds the same row for the httptools package in DIR/httptools
        (say, a patched build), labelled LABEL.
  --deb-also LABEL=FILE adds a row for another .deb (say, the commit before a change),
        unpacked and run as `deb` is: a before/after in the same turns.
`--write` replaces the `cold-start` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.throughput import first_byte_seconds

MODULE = "hello:app"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # pybuild must use Debian's python3 (Makefile)
LAYOUTS = ("deb", "venv", "uwsgi", "venv-debian-httptools")
DEBIAN_HTTPTOOLS = Path("/usr/lib/python3/dist-packages/httptools")


def build_deb(target: Path, ref: str = "HEAD") -> Path:
    """Build the .deb of `ref` (unit tests skipped) and copy it to `target`; `target`."""
    with tempfile.TemporaryDirectory(prefix="sockactd-deb-") as tmp_name:
        tree = Path(tmp_name) / "sockactd"
        tree.mkdir()
        archive = subprocess.Popen(
            ["git", "-C", str(common.ROOT), "archive", ref], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise RuntimeError(f"git archive {ref} failed")
        shutil.copytree(tree / "packaging" / "debian", tree / "debian")
        env = {**os.environ, "PATH": SYSTEM_PATH, "DEB_BUILD_OPTIONS": "nocheck"}
        subprocess.run(
            ["dpkg-buildpackage", "-us", "-uc", "-b"],
            cwd=tree,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=600,
        )
        built = sorted(Path(tmp_name).glob("sockactd_*_all.deb"))
        if len(built) != 1:
            raise RuntimeError(f"expected one sockactd_*_all.deb, found {built}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)
    return target


def unpack_deb(deb: Path, root: Path) -> Path:
    """`dpkg-deb -x` the package into `root`, byte-compile it; its /usr/bin/sockactd."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    site = root / "usr" / "lib" / "python3" / "dist-packages"
    subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", str(site)], check=True)
    launcher = root / "usr" / "bin" / "sockactd"
    if not os.access(launcher, os.X_OK):
        raise RuntimeError(f"{deb} has no executable /usr/bin/sockactd")
    return launcher


def servers(launcher: Path, tmp: Path, httptools: dict[str, Path]) -> dict[str, common.Server]:
    """The command lines (no bind address: the socket comes from systemd).

    `httptools`: layout name -> an httptools package directory the venv's row takes
    instead of its own.
    """
    control = tmp / "control.sock"
    common.use_sockactd_command([str(launcher)])
    site = launcher.parent.parent / "lib" / "python3" / "dist-packages"
    deb = dataclasses.replace(
        common.sockactd(MODULE, control=control), name="deb", env=(("PYTHONPATH", str(site)),)
    )
    common.use_sockactd_command([])  # back to the pinned virtualenv
    venv = dataclasses.replace(common.sockactd(MODULE, control=control), name="venv")
    uwsgi = common.uwsgi(MODULE, activated=True)
    chosen = {"deb": deb, "venv": venv, "uwsgi": uwsgi}
    for name, package in httptools.items():
        shim = tmp / f"path-{name}"  # the package alone: nothing else of its directory
        shim.mkdir()
        (shim / "httptools").symlink_to(package.resolve())
        env = (*venv.env, ("PYTHONPATH", str(shim)))
        chosen[name] = dataclasses.replace(venv, name=name, env=env)
    return chosen


def _deb_server(name: str, launcher: Path, tmp: Path) -> common.Server:
    """Another unpacked .deb, run as `servers` runs the first."""
    common.use_sockactd_command([str(launcher)])
    site = launcher.parent.parent / "lib" / "python3" / "dist-packages"
    server = common.sockactd(MODULE, control=tmp / f"control-{name}.sock")
    common.use_sockactd_command([])
    return dataclasses.replace(server, name=name, env=(("PYTHONPATH", str(site)),))


def measure(chosen: dict[str, common.Server], runs: int, tmp: Path) -> dict[str, list[float]]:
    """`runs` cold starts of each server, taking turns; milliseconds."""
    found: dict[str, list[float]] = {name: [] for name in chosen}
    for number in range(runs):
        for name, server in chosen.items():
            found[name].append(1000 * first_byte_seconds(server, tmp / f"cold-{name}.log"))
        print(f"# run {number + 1}/{runs}: " + ", ".join(
            f"{name} {times[-1]:.1f} ms" for name, times in found.items()
        ), file=sys.stderr, flush=True)  # fmt: skip
    return found


def render(
    found: dict[str, list[float]],
    chosen: dict[str, common.Server],
    httptools: dict[str, Path],
    deb_note: str,
    runs: int,
) -> str:
    uwsgi = statistics.median(found["uwsgi"]) if found.get("uwsgi") else None
    header = ["server", "median ms", "quartiles ms", "min-max ms", "x uWSGI (median)",
              "minus uWSGI, paired: median ms (runs below)"]  # fmt: skip
    rows = []
    for name, times in found.items():
        ordered = sorted(times)
        quartiles = statistics.quantiles(ordered, n=4)
        median = statistics.median(ordered)
        rows.append([
            LABELS[name], f"{median:.1f}", f"{quartiles[0]:.1f}-{quartiles[2]:.1f}",
            f"{ordered[0]:.1f}-{ordered[-1]:.1f}", f"{median / uwsgi:.2f}" if uwsgi else "-",
            _paired(times, found["uwsgi"]) if uwsgi and name != "uwsgi" else "-",
        ])  # fmt: skip
    out = [f"Machine: {common.machine_summary()}\n"]
    out.append(
        f"{runs} runs per server, taking turns; each: connect() to the first response byte "
        "of `GET /` under `systemd-socket-activate -l 127.0.0.1:PORT --fdname=http`, 2 "
        "workers, `bench/apps/hello.py`.\n"
    )
    out.append(common.markdown_table(header, rows))
    out.append("\nCommands (after `systemd-socket-activate -l 127.0.0.1:PORT --fdname=http`):\n")
    for name, server in chosen.items():
        text = shlex.join([*(f"{k}={v}" for k, v in server.env), *server.argv])
        text = text.replace(str(common.ROOT) + "/", "")
        text = re.sub(r"/tmp/sockactd-cold-[^/]+", "$TMP", text)
        out.append(f"- {LABELS[name]}: `{text}`")
        if name in httptools:
            out.append(f"  (`$TMP/path-{name}/httptools` -> `{httptools[name]}`)")
    out.append(f"- the .deb: {deb_note}")
    out.append(f"- this table: `{shlex.join(['bench/cold_start.py', *sys.argv[1:]])}`\n")
    return "\n".join(out)


def _paired(times: list[float], uwsgi: list[float]) -> str:
    """Median of the per-run differences to uWSGI's run of the same turn (a drift in the
    machine's speed hits both alike), and in how many turns this server was faster."""
    differences = [mine - theirs for mine, theirs in zip(times, uwsgi, strict=True)]
    below = sum(difference < 0 for difference in differences)
    return f"{statistics.median(differences):+.1f} ({below}/{len(differences)})"


LABELS = {
    "deb": "sockactd, the .deb (/usr/bin/python3, Debian's python3-httptools)",
    "venv": "sockactd, virtualenv (.venv's packages, PyPI httptools)",
    "uwsgi": "uWSGI (Debian)",
    "venv-debian-httptools": "sockactd, virtualenv with Debian's python3-httptools",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--deb", type=Path, help="measure this .deb instead of building HEAD's")
    parser.add_argument("--build-deb", type=Path, help="only build HEAD's .deb into this file")
    parser.add_argument("--only", help=f"from {','.join(LAYOUTS)} (default: all there are)")
    parser.add_argument(
        "--httptools",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="one more venv row, with the httptools package in DIR/httptools",
    )
    parser.add_argument(
        "--deb-also",
        action="append",
        default=[],
        metavar="LABEL=FILE",
        help="one more .deb row, for this .deb",
    )
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    if args.build_deb:
        print(build_deb(args.build_deb.resolve()))
        return
    there = [n for n in LAYOUTS if n != "venv-debian-httptools" or DEBIAN_HTTPTOOLS.is_dir()]
    names = [n for n in args.only.split(",") if n] if args.only else there
    if args.runs < 2 or not set(names) <= set(there):
        parser.error(f"--runs >= 2 and --only from {','.join(there)}")
    httptools = {"venv-debian-httptools": DEBIAN_HTTPTOOLS} if DEBIAN_HTTPTOOLS.is_dir() else {}
    for extra in args.httptools:
        label, _, directory = extra.partition("=")
        name, package = f"venv-{label}", Path(directory) / "httptools"
        if not label or name in LABELS or not (package / "__init__.py").is_file():
            parser.error(f"--httptools {extra}: LABEL=DIR, a new label, DIR/httptools a package")
        LABELS[name] = f"sockactd, virtualenv with httptools `{label}`"
        httptools[name] = package
        names.append(name)
    more_debs: dict[str, Path] = {}
    for extra in args.deb_also:
        label, _, file = extra.partition("=")
        name = f"deb-{label}"
        if not label or name in LABELS or not Path(file).is_file():
            parser.error(f"--deb-also {extra}: LABEL=FILE, a new label, FILE a .deb")
        LABELS[name] = f"sockactd, the .deb `{label}`"
        more_debs[name] = Path(file).resolve()
        names.insert(names.index("deb") + 1 if "deb" in names else 0, name)
    with tempfile.TemporaryDirectory(prefix="sockactd-cold-") as tmp_name:
        tmp = Path(tmp_name)
        commit = common.pin_sockactd(tmp)
        if args.deb:
            deb, deb_note = args.deb.resolve(), f"`{args.deb}` as given"
        else:
            deb = build_deb(tmp / "sockactd.deb")
            deb_note = f"built from commit {commit} by this script (nocheck), unpacked"
        launcher = unpack_deb(deb, tmp / "root")
        every = servers(launcher, tmp, httptools)
        for name, file in more_debs.items():
            every[name] = _deb_server(name, unpack_deb(file, tmp / f"root-{name}"), tmp)
            deb_note += f"; `{name.removeprefix('deb-')}`: `{file}`"
        chosen = {name: every[name] for name in names}
        found = measure(chosen, args.runs, tmp)
        report = render(found, chosen, httptools, deb_note, args.runs)
    print(report)
    if args.write:
        common.write_section("cold-start", "## Cold start: .deb, virtualenv, uWSGI\n\n" + report)


if __name__ == "__main__":
    main()
