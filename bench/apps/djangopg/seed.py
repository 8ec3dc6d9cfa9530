"""Make the bench's tables and rows: `python -m djangopg.seed ROWS` (bench/apps on sys.path).

Creates the tables (`migrate --run-syncdb`: the app has no migrations), CATEGORIES
categories and ROWS items with ~200 bytes of description each, in one transaction,
then VACUUM ANALYZE so the planner knows the sizes before the first request.
"""

import os
import sys

CATEGORIES = 20


def main() -> None:
    rows = int(sys.argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangopg.settings")
    import django
    from django.core.management import call_command
    from django.db import connection, transaction

    django.setup()
    from djangopg.models import Category, Item

    call_command("migrate", run_syncdb=True, verbosity=0)
    with transaction.atomic():
        categories = Category.objects.bulk_create(
            Category(name=f"category {n}") for n in range(1, CATEGORIES + 1)
        )
        Item.objects.bulk_create(
            (
                Item(
                    category=categories[n % CATEGORIES],
                    name=f"item number {n}",
                    description=f"Item {n} is a fine thing. " * 8,
                    price_cents=(n * 7919) % 100_000,
                )
                for n in range(1, rows + 1)
            ),
            batch_size=2000,
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(Item.objects.count())


if __name__ == "__main__":
    main()
