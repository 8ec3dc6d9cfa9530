"""The bench's tables: ~10k items in a few categories (made by bench/django_pg.py)."""

from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=50)


class Item(models.Model):
    category = models.ForeignKey(Category, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    description = models.TextField()
    price_cents = models.IntegerField()
    created = models.DateTimeField(auto_now_add=True)
