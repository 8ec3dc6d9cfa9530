"""contrib/ansible: the playbook parses, and docs/fleet.md's variable table matches the role.

The role itself runs against real hosts in tests/systemd/test_fleet.py. Not under
tests/unit: the .deb build runs those without contrib/, docs/ or ansible-core.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import ROOT, require

ANSIBLE = ROOT / "contrib" / "ansible"
DEFAULTS = ANSIBLE / "roles" / "sockactd_deploy" / "defaults" / "main.yml"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def documented_variables() -> list[str]:
    text = (ROOT / "docs" / "fleet.md").read_text()
    return re.findall(r"^\| `(sockactd_\w+)` \|", text, flags=re.MULTILINE)


def test_every_role_variable_is_documented_once_and_nothing_else() -> None:
    defaults = yaml.safe_load(DEFAULTS.read_text())
    documented = documented_variables()
    assert sorted(documented) == sorted(set(documented))  # none twice
    assert sorted(documented) == sorted(defaults)


def test_example_playbook_passes_ansibles_syntax_check(tmp_path: Path) -> None:
    require(PLAYBOOK.exists(), f"needs {PLAYBOOK} (ansible-core, pyproject's test extra)")
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ANSIBLE / "roles"),
        "ANSIBLE_HOME": str(tmp_path),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "LC_ALL": "C.UTF-8",
    }
    result = subprocess.run(
        [str(PLAYBOOK), "--syntax-check", "-i", str(ANSIBLE / "inventory.example.yml"),
         str(ANSIBLE / "deploy.yml")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
