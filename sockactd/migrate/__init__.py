"""`sockactd migrate-uwsgi`: turn a uWSGI configuration into a sockactd instance.

    ini.py      read a uWSGI ini file (or an ExecStart= command line) with uWSGI's rules
    rules.py    the table: what each uWSGI option becomes, derived from config/settings.py
    convert.py  apply the table: TOML settings, socket and service drop-ins, a report
    render.py   the texts: TOML, unit drop-ins, the report, the docs table
    command.py  the subcommand's command line, files and exit status

None of this is on the server's start-up path: cli.py imports it only for the
`migrate-uwsgi` subcommand (tests/integration/test_start_up_path.py checks).
"""
