"""`python -m sockactd`: the same as the `sockactd` command (see cli.py)."""

from sockactd.cli import main

if __name__ == "__main__":
    main()
