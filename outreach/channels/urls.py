"""Included at /outreach/gateway/ (config/urls.py): the provider's callbacks."""

from django.urls import path

from . import views

app_name = "gateway"

urlpatterns = [
    path("receipts/", views.gateway_receipts, name="receipts"),
]
