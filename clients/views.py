from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from .selectors import client_get, client_queryset_for


@login_required
def client_list(request):
    clients = client_queryset_for(request.user).order_by("name")[:50]
    return render(request, "clients/client_list.html", {"clients": clients})


@login_required
def client_detail(request, client_no):
    client = client_get(user=request.user, client_no=client_no)
    return render(request, "clients/client_detail.html", {"client": client})


@login_required
def interaction_create(request, client_no):
    client = client_get(user=request.user, client_no=client_no)
    return redirect("clients:client_detail", client_no=client.client_no)
