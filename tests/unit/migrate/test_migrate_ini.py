"""The uWSGI ini reader, rule by rule, over a table of snippets.

Every snippet that uWSGI itself can read is also given to the real `uwsgi --get`
(installed by scripts/setup), run from the file's directory as uWSGI resolves
includes against its working directory: the reader's first value of each key
must be what uWSGI prints. So the rules are uWSGI's, not our reading of its docs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sockactd.migrate.cmdline import read_command
from sockactd.migrate.ini import read_ini
from sockactd.migrate.option import IniError, Option
from sockactd.migrate.rules import is_flag
from tests.support import require

# (name, {file: text}, expected [(key, value)]); the first file is the one read
CASES: list[tuple[str, dict[str, str], list[tuple[str, str]]]] = [
    ("comments and blanks", {"a.ini": "; c\n# c\n\n[uwsgi]\n  ; c\n\t# c\nmaster = true\n"},
     [("master", "true")]),
    ("spaces, tabs and CR are stripped", {"a.ini": "[uwsgi]\r\n \tprocesses\t=  4 \r\n"},
     [("processes", "4")]),
    ("a comment sign inside a value is kept", {"a.ini": "[uwsgi]\nenv = A=1 # no comment\n"},
     [("env", "A=1 # no comment")]),
    ("the key ends at the first =", {"a.ini": "[uwsgi]\nenv = DSN=a=b\n"},
     [("env", "DSN=a=b")]),
    ("a line without = is a key with an empty value", {"a.ini": "[uwsgi]\nvacuum\n"},
     [("vacuum", "")]),
    ("repeated options stay, in order", {"a.ini": "[uwsgi]\nenv = A=1\nenv = B=2\n"},
     [("env", "A=1"), ("env", "B=2")]),
    ("only the uwsgi section", {"a.ini": "[app:main]\nx = 1\n[uwsgi]\ny = 2\n[other]\nz = 3\n"},
     [("y", "2")]),
    ("a section may come back", {"a.ini": "[uwsgi]\na = 1\n[x]\nb = 2\n[uwsgi]\nc = 3\n"},
     [("a", "1"), ("c", "3")]),
    ("%d %n %s %e %c %p", {"dir/shop.ini": "[uwsgi]\nv = %n|%s|%e|%c\nd = %d\n"},
     [("v", "shop|shop.ini|ini|dir")]),
    ("%% is a percent sign, an unknown %X is dropped", {"a.ini": "[uwsgi]\nv = 5%%|%z|\n"},
     [("v", "5%||")]),
    ("placeholders, also defined later", {"a.ini": "[uwsgi]\nbase = /srv/%(app)\napp = shop\n"
                                          "chdir = %(base)\n"},
     [("base", "/srv/shop"), ("app", "shop"), ("chdir", "/srv/shop")]),
    ("a placeholder is the first value", {"a.ini": "[uwsgi]\np = 1\np = 2\nv = %(p)\n"},
     [("p", "1"), ("p", "2"), ("v", "1")]),
    ("placeholder arithmetic", {"a.ini": "[uwsgi]\nn = 3\nv = %(n * 2)\nw = %(n ++)\n"
                                         "x = %(n n)\n"},
     [("n", "3"), ("v", "6"), ("w", "4"), ("x", "33")]),
    ("set-placeholder", {"a.ini": "[uwsgi]\nset-placeholder = port=9000\nsocket = :%(port)\n"},
     [("set-placeholder", "port=9000"), ("socket", ":9000")]),
    ("ini = FILE includes at that point, relative to the file",
     {"a/main.ini": "[uwsgi]\nfirst = 1\nini = ../conf/base.ini\nlast = %(b)\n",
      "conf/base.ini": "[uwsgi]\nb = 2\nwhere = %c\n"},
     [("first", "1"), ("b", "2"), ("where", "conf"), ("last", "2")]),
    ("ini = FILE:SECTION and :SECTION",
     {"main.ini": "[uwsgi]\nini = :extra\nini = other.ini:prod\n[extra]\ne = 1\n",
      "other.ini": "[uwsgi]\nno = 1\n[prod]\nprocesses = 8\n"},
     [("e", "1"), ("processes", "8")]),
    ("ini = :SECTION reads the file read last",
     {"main.ini": "[uwsgi]\nini = other.ini\nini = :prod\n[prod]\nnot = this\n",
      "other.ini": "[uwsgi]\na = 1\n[prod]\nb = 2\n"},
     [("a", "1"), ("b", "2")]),
    ("upper-case magic is the first file's", {"top/main.ini": "[uwsgi]\nini = ../inc/x.ini\n",
                                              "inc/x.ini": "[uwsgi]\nv = %n-%N-%c-%C\n"},
     [("v", "x-main-inc-top")]),
    ("for ... endfor", {"a.ini": "[uwsgi]\nfor = 1 2\nsocket = /run/s%(_).sock\nendfor =\n"},
     [("socket", "/run/s1.sock"), ("socket", "/run/s2.sock")]),
    ("for-times", {"a.ini": "[uwsgi]\nfor-times = 2\nenv = N%(_)=x\nendfor =\n"},
     [("env", "N1=x"), ("env", "N2=x")]),
    ("if-opt / else / endif", {"a.ini": "[uwsgi]\nmode = prod\nif-opt = mode=prod\np = 8\n"
                                        "else =\np = 1\nendif =\n"},
     [("mode", "prod"), ("p", "8")]),
    ("if-not-opt", {"a.ini": "[uwsgi]\nif-not-opt = threads\nthreads = 2\nendif =\n"},
     [("threads", "2")]),
    ("JSON: lists repeat, true is 1, magic and placeholders",
     {"dir/app.json": '{"uwsgi": {"socket": ["/run/a.sock", ":3031"], "master": true, '
                      '"vacuum": false, "processes": 4, "name": "%n", "p": "%(processes)"}}'},
     [("socket", "/run/a.sock"), ("socket", ":3031"), ("master", "1"), ("vacuum", "0"),
      ("processes", "4"), ("name", "app"), ("p", "4")]),
    ("json = FILE:SECTION includes JSON",
     {"main.ini": "[uwsgi]\njson = a.json:prod\n",
      "a.json": '{"uwsgi": {"a": 1}, "prod": {"b": 2}}'},
     [("b", "2")]),
]  # fmt: skip

# what the magic-directory case's %d must be (the directory of the file read)
IDS = [case[0] for case in CASES]


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / next(iter(files))


def pairs(options: list[Option]) -> list[tuple[str, str]]:
    return [(o.key, o.value) for o in options]


@pytest.mark.parametrize(("name", "files", "expected"), CASES, ids=IDS)
def test_reader(name: str, files: dict[str, str], expected: list[tuple[str, str]],
                tmp_path: Path) -> None:  # fmt: skip
    options = read_ini(write(tmp_path, files))
    got = [pair for pair in pairs(options) if pair[0] != "d"]
    assert got == expected
    assert all(not o.runtime for o in options)
    directory = next((o.value for o in options if o.key == "d"), None)
    if directory is not None:
        assert directory == str(write(tmp_path, files).parent.resolve()) + "/"


@pytest.mark.parametrize(("name", "files", "expected"), CASES, ids=IDS)
def test_uwsgi_itself_reads_the_same(
    name: str, files: dict[str, str], expected: list[tuple[str, str]], tmp_path: Path
) -> None:
    uwsgi = shutil.which("uwsgi")
    require(uwsgi is not None, "needs uwsgi (scripts/setup installs it)")
    assert uwsgi is not None
    path = write(tmp_path, files)
    ours = {}
    for option in read_ini(path):
        ours.setdefault(option.key, option.value)
    for key, value in ours.items():
        result = subprocess.run(
            [uwsgi, "--json" if path.suffix == ".json" else "--ini", path.name, "--get", key],
            cwd=path.parent, capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        assert result.stdout.rstrip("\n") == value, (key, result.stdout, result.stderr)


RUNTIME = [
    ("processes = %k", "%k (the CPU count)"),
    ("env = HOME=$(HOME)", "$(HOME) (expanded by uWSGI at run time)"),
    ("socket = /run/%h.sock", "%h (the host name)"),
    ("chdir = %(nowhere)", "%(nowhere) names no option"),
    ("uid = ${SERVICE_USER}", "${SERVICE_USER} (not uWSGI syntax: a template left unfilled?)"),
]


@pytest.mark.parametrize(("line", "note"), RUNTIME)
def test_what_only_uwsgi_knows_at_run_time_is_reported_not_guessed(
    line: str, note: str, tmp_path: Path
) -> None:
    (option,) = read_ini(write(tmp_path, {"a.ini": f"[uwsgi]\n{line}\n"}))
    assert option.runtime == (note,)
    assert option.value == line.split(" = ", 1)[1]  # kept as written


def test_a_host_dependent_block_marks_its_options(tmp_path: Path) -> None:
    text = "[uwsgi]\nif-env = VIRTUAL_ENV\nvirtualenv = %(_)\nendif =\nmaster = true\n"
    venv, master = read_ini(write(tmp_path, {"a.ini": text}))
    assert venv.key == "virtualenv" and "if-env = VIRTUAL_ENV" in venv.runtime[0]
    assert master.runtime == ()


ERRORS = [
    ("section header without ]", {"a.ini": "[uwsgi]\nmaster = true\n[broken\n"}, "a.ini:3"),
    ("a value without a key", {"a.ini": "[uwsgi]\n= 4\n"}, "a.ini:2"),
    ("no uwsgi section", {"a.ini": "[app:main]\nx = 1\n"}, "no [uwsgi] section"),
    ("not UTF-8", {"a.ini": "[uwsgi]\nchdir = /srv/\udcff\n"}, "a.ini:2"),
    ("missing include", {"a.ini": "[uwsgi]\nini = nope.ini\n"}, "a.ini:2"),
    ("include loop", {"a.ini": "[uwsgi]\nini = b.ini\n", "b.ini": "[uwsgi]\nini = a.ini\n"},
     "include loop"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "files", "where"), ERRORS, ids=[e[0] for e in ERRORS])
def test_not_a_uwsgi_ini_file_is_refused_with_its_line(
    name: str, files: dict[str, str], where: str, tmp_path: Path
) -> None:
    for file, text in files.items():
        (tmp_path / file).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(IniError) as raised:
        read_ini(tmp_path / next(iter(files)))
    assert where in str(raised.value)
    assert raised.value.exit_code == 78


def test_command_line_gives_the_same_options(tmp_path: Path) -> None:
    (tmp_path / "base.ini").write_text("[uwsgi]\nprocesses = 4\n")
    command = (
        "/usr/bin/uwsgi --ini base.ini --master --socket /run/app.sock -p 8 "
        "--env A=1 --env=B=2 --lazy-apps --module app.wsgi:application"
    )
    assert pairs(read_command(command, is_flag, tmp_path)) == [
        ("processes", "4"), ("master", ""), ("socket", "/run/app.sock"), ("processes", "8"),
        ("env", "A=1"), ("env", "B=2"), ("lazy-apps", ""), ("module", "app.wsgi:application"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "message"),
    [("uwsgi --socket", "--socket needs a value"), ("uwsgi -Z 1", "unknown short option"),
     ("uwsgi --yaml app.yaml", "only ini"), ("uwsgi --json missing.json", "cannot read"),
     ("uwsgi 'unclosed", "cannot split")],
)  # fmt: skip
def test_bad_command_lines_are_refused(command: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(IniError, match=message):
        read_command(command, is_flag, tmp_path)
