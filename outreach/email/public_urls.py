from django.urls import path

from . import public_views

app_name = "outreach_public"

urlpatterns = [
    path("u/<str:signed>/", public_views.unsubscribe_view, name="unsubscribe"),
]
