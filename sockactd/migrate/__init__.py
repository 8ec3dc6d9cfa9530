"""`sockactd migrate-uwsgi`: turn a uWSGI configuration into a sockactd instance.

    ini.py      read a uWSGI ini (or JSON) file with uWSGI's rules: sections, magic, includes
    placeholders.py  resolve %(name) placeholders, with uWSGI's arithmetic
    cmdline.py  read a uWSGI command line (an ExecStart= value) into the same options
    option.py   the Option record and IniError the readers share
    rules.py    the table: what each uWSGI option becomes, derived from config/settings.py
    units.py    the socket and service directives options become
    uwsgi_options.py  every option name uWSGI knows (an option, or a placeholder variable?)
    convert.py  apply the table: TOML settings, socket and service drop-ins, a report
    render.py   the texts: TOML, unit drop-ins, the report, the docs table
    command.py  the subcommand's command line, files and exit status

None of this is on the server's start-up path: cli.py imports it only for the
`migrate-uwsgi` subcommand (tests/integration/test_start_up_path.py checks).
"""
