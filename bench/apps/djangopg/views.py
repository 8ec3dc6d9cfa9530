"""The three views: a list page, a detail page, a write.

- `/items/?page=N`: one query (items joined to their category), 50 rows through a template.
- `/items/<id>/`: two queries (the item, then its category), through a template.
- `POST /items/new/`: one insert inside a transaction; answers 201 with the new id.
"""

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Item

PAGE = 50


def item_list(request: HttpRequest) -> HttpResponse:
    page = int(request.GET.get("page", "0"))
    items = Item.objects.select_related("category").order_by("id")[page * PAGE : (page + 1) * PAGE]
    return render(request, "djangopg/list.html", {"items": items, "page": page})


def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Item, pk=pk)
    category = item.category  # the second query
    return render(request, "djangopg/detail.html", {"item": item, "category": category})


@csrf_exempt  # the load generator has no form to take a token from
@require_POST
def item_new(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        item = Item.objects.create(
            category_id=int(request.POST.get("category", "1")),
            name=request.POST.get("name", "new item")[:100],
            description=request.POST.get("description", ""),
            price_cents=int(request.POST.get("price", "100")),
        )
    return HttpResponse(str(item.pk), status=201, content_type="text/plain")
