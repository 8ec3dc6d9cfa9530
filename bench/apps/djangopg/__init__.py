"""A small Django project on PostgreSQL for bench/django_pg.py (issue 17, benchmark 1).

One app, this package: `Item` rows (~10k, made by the bench) in `Category`s, and three
views as a real site has them -- a list page (one query, ~50 rows through a template),
a detail page (two queries) and a write (one insert in a transaction). The database is
named by DJANGOPG_* environment variables (settings.py); the bench starts PostgreSQL.
"""
