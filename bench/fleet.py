"""Rolling deploys across a fleet: how long contrib/ansible's playbook takes for N hosts.

    .venv/bin/python bench/fleet.py [--hosts 4] [--rounds 2] [--write]

Boots --hosts package sandboxes as hosts (tests/systemd/fleet.py: each its own systemd,
overlays, loopback address and sshd, this checkout's .deb installed with apt-get), one
nginx in front of all of them with paced requests through it for the whole run, and
deploys release after release with ansible-playbook over ssh. Each round runs every case
once, interleaved: the first N hosts (`-e target=app[0:N-1]`) with batch 1 (`serial: 1`)
for N = 1..hosts, then N = 3 with batch 2 and N = hosts with `serial: 50%`.

Reported per case: the median wall time of ansible-playbook, the requests nginx served
meanwhile and how many failed, and how long each host's own reload took (from "chain
reload started" to "chain reload done" in its journal). Then the model of docs/fleet.md,
T(N, b) = T0 + ceil(N/b) * (t_host + c*b), fitted on the batch-1 cases except N = 3 and
on N = hosts at 50%, and checked against the two N = 3 cases it was not fitted on.
`--write` replaces the `fleet` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from tests.systemd.debs import build_deb
from tests.systemd.fleet import SERVICE, Fleet, booted_fleet
from tests.systemd.fleet_clients import PacedLoad


@dataclass
class Case:
    hosts: int
    batch: str  # the play's serial: "1", "2", "50%"
    seconds: list[float] = field(default_factory=list)
    served: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    reloads: list[float] = field(default_factory=list)  # each host's reload, seconds

    @property
    def size(self) -> int:
        """Hosts per batch, as Ansible computes it (a percentage rounds down, at least 1)."""
        if self.batch.endswith("%"):
            return max(1, int(self.hosts * int(self.batch[:-1]) / 100))
        return int(self.batch)

    @property
    def label(self) -> str:
        return f"{self.hosts} hosts, serial: {self.batch}"


def model(t0: float, t_host: float, c: float, hosts: int, size: int) -> float:
    return t0 + math.ceil(hosts / size) * (t_host + c * size)


def fit(cases: Sequence[Case]) -> tuple[float, float, float]:
    """T0 and the slope from batch-1 cases (least squares), then c from the 50% case."""
    ones = [(k.hosts, statistics.median(k.seconds)) for k in cases if k.size == 1]
    mean_n = statistics.mean(n for n, _ in ones)
    mean_t = statistics.mean(t for _, t in ones)
    slope = sum((n - mean_n) * (t - mean_t) for n, t in ones) / sum(
        (n - mean_n) ** 2 for n, _ in ones
    )
    t0 = mean_t - slope * mean_n  # slope = t_host + c
    wide = next(k for k in cases if k.size > 1)
    per_batch = (statistics.median(wide.seconds) - t0) / math.ceil(wide.hosts / wide.size)
    c = (per_batch - slope) / (wide.size - 1)  # per_batch = t_host + c * size
    return t0, slope - c, c


_RELOAD = re.compile(r"^\[\s*([\d.]+)\].*chain reload (started|done)", re.MULTILINE)


def reload_times(fleet: Fleet) -> dict[str, list[float]]:
    """host -> durations of every chain reload in its journal (monotonic stamps)."""
    return {host.name: reload_durations(host.box.journal(SERVICE)) for host in fleet.hosts}


def reload_durations(journal: str) -> list[float]:
    """Each "done" paired with the "started" just before it; a lone mark is skipped."""
    durations, started = [], None
    for stamp, what in _RELOAD.findall(journal):
        if what == "started":
            started = float(stamp)
        elif started is not None:
            durations.append(float(stamp) - started)
            started = None
    return durations


def roll(fleet: Fleet, load: PacedLoad, case: Case, release: str) -> None:
    count, failures = load.count(), len(load.failures)
    before = reload_times(fleet)
    result = fleet.deploy(
        release, fleet.make_release(release), "-e", f"target=app[0:{case.hosts - 1}]",
        serial=case.batch,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{case.label}: ansible-playbook failed:\n{result.output[-3000:]}")
    assert set(result.recap) == {h.name for h in fleet.hosts[: case.hosts]}, result.recap
    case.seconds.append(result.seconds)
    case.served.append(load.count() - count)
    case.failed.append(len(load.failures) - failures)
    for name, times in reload_times(fleet).items():
        case.reloads += times[len(before[name]) :]
    print(f"{case.label}: {result.seconds:.1f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    if args.hosts < 4:
        parser.error("--hosts must be at least 4 (the model is checked at N = 3)")
    cases = [Case(n, "1") for n in range(1, args.hosts + 1)]
    cases += [Case(3, "2"), Case(args.hosts, "50%")]
    machine = common.machine_summary()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="sockactd-bench-deb-") as tmp:
        deb = build_deb(Path(tmp))
        with booted_fleet(args.hosts, deb) as fleet:
            first = fleet.deploy("0", fleet.make_release("0"), serial="100%")
            assert first.returncode == 0, first.output
            assert fleet.nginx is not None
            with PacedLoad(fleet.nginx.port, threads=2, max_seconds=3600) as load:
                assert isinstance(load, PacedLoad)  # Load.__enter__ says Load
                for r in range(args.rounds):
                    for i, case in enumerate(cases):
                        roll(fleet, load, case, release=f"{r + 1}.{i + 1}")
                total, failures = load.count(), list(load.failures)
    t0, t_host, c = fit([k for k in cases if k.hosts != 3])
    body = report(cases, (t0, t_host, c), machine, commit, args, total, failures)
    print(body)
    if args.write:
        common.write_section("fleet", body)


def report(
    cases: Sequence[Case],
    params: tuple[float, float, float],
    machine: str,
    commit: str,
    args: argparse.Namespace,
    total: int,
    failures: list[str],
) -> str:
    t0, t_host, c = params
    rows = []
    for k in cases:
        predicted = model(t0, t_host, c, k.hosts, k.size)
        fitted = "checked" if k.hosts == 3 else "fitted"
        rows.append([
            k.label, k.size, f"{statistics.median(k.seconds):.1f}",
            " / ".join(f"{s:.1f}" for s in k.seconds), f"{predicted:.1f} ({fitted})",
            sum(k.served), f"**{sum(k.failed)}**",
            f"{statistics.median(k.reloads):.2f} ({len(k.reloads)})" if k.reloads else "-",
        ])  # fmt: skip
    table = common.markdown_table(
        ["hosts, batch", "hosts per batch", "median s", "each round s", "model s",
         "requests through nginx", "failed", "a host's reload, median s (reloads)"],
        rows,
    )  # fmt: skip
    scale = [
        [n, f"{model(t0, t_host, c, n, 1) / 60:.0f} min",
         f"{model(t0, t_host, c, n, max(1, n // 10)) / 60:.0f} min",
         f"{model(t0, t_host, c, n, max(1, n // 2)) / 60:.0f} min"]
        for n in (100, 1000)
    ]  # fmt: skip
    return (
        "## Rolling deploys across a fleet\n\n"
        f"Machine: {machine}; commit {commit}.\n\n"
        f"{args.hosts} hosts on one machine (package sandboxes: own systemd, overlays, "
        "loopback address, sshd; the .deb installed with apt-get), contrib/ansible/deploy.yml "
        "run by ansible-playbook over ssh (pipelining, ControlPersist), a new release each "
        f"roll, {args.rounds} interleaved rounds; 2 client threads send requests through one "
        "nginx with every host as an upstream (no retry on another host) for the whole run, "
        "each at most one request per 10 ms.\n\n"
        f"{table}\n"
        f"Requests through nginx over the whole run: {total}, failed: **{len(failures)}**"
        f"{' (' + '; '.join(failures[:3]) + ')' if failures else ''}.\n\n"
        "The model of docs/fleet.md, T(N, b) = T0 + ceil(N/b) x (t_host + c x b), fitted on "
        "the rows marked fitted: "
        f"T0 = {t0:.1f} s, t_host = {t_host:.1f} s, c = {c:.2f} s; the N = 3 rows were not "
        "used for the fit. What it predicts (forks at least the batch size; a host's own "
        "reload does not depend on N):\n\n"
        + common.markdown_table(["hosts", "serial: 1", "serial: 10%", "serial: 50%"], scale)
        + f"\nCommand: `.venv/bin/python bench/fleet.py --hosts {args.hosts} "
        f"--rounds {args.rounds} --write`\n"
    )


if __name__ == "__main__":
    main()
