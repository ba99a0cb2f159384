from django.urls import path

from . import views

app_name = "segments"
urlpatterns = [
    path("", views.segment_list, name="segment_list"),
    path("new/", views.segment_new, name="segment_new"),
    path("new/static/", views.static_list_new, name="static_list_new"),
    path("preview/", views.segment_preview_view, name="segment_preview"),
    path("personas/", views.persona_overview, name="persona_overview"),
    path("static/add/", views.static_list_add, name="static_list_add"),
    path("static/options/", views.static_list_options, name="static_list_options"),
    path("<slug:code>/", views.segment_detail, name="segment_detail"),
    path("<slug:code>/edit/", views.segment_edit, name="segment_edit"),
    path("<slug:code>/refresh/", views.refresh_start, name="refresh_start"),
    path("<slug:code>/refresh/<int:pk>/", views.refresh_status, name="refresh_status"),
    path("<slug:code>/export/<str:fmt>/", views.segment_export_view, name="segment_export"),
]
