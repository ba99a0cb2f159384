"""Public links from newsletter emails, mounted at /n/ (shapes documented in links.py)."""

from django.urls import path

from . import public_views

app_name = "newsletters_public"

urlpatterns = [
    path("u/<str:signed>/", public_views.unsubscribe_view, name="unsubscribe"),
    path("f/<str:signed>/", public_views.feedback_view, name="feedback"),
    path("c/<str:signed>/", public_views.click_view, name="click"),
    path("o/<str:signed>.gif", public_views.open_pixel_view, name="open"),
]
