"""URLs of the three views, and `/` (the list's first page) for servers' readiness probes."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.item_list),
    path("items/", views.item_list),
    path("items/<int:pk>/", views.item_detail),
    path("items/new/", views.item_new),
]
