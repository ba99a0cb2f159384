from django.urls import path

from . import consent_views, views

app_name = "newsletters"

urlpatterns = [
    path("", views.publication_list, name="publication_list"),
    path("approvals/", views.approval_queue, name="approval_queue"),
    path("clients/<str:client_no>/resubscribe/", consent_views.resubscribe,
         name="client_resubscribe"),
    path("phrases/", views.phrase_list, name="phrase_list"),
    path("phrases/<int:pk>/remove/", views.phrase_remove, name="phrase_remove"),
    path("publications/new/", views.publication_create, name="publication_create"),
    path("publications/<slug:slug>/", views.edition_list, name="edition_list"),
    path("publications/<slug:slug>/edit/", views.publication_edit, name="publication_edit"),
    path("publications/<slug:slug>/editions/new/", views.edition_create, name="edition_create"),
    path("editions/<int:pk>/", views.edition_detail, name="edition_detail"),
    path("editions/<int:pk>/edit/", views.edition_edit, name="edition_edit"),
    path("editions/<int:pk>/preview/", views.edition_preview, name="edition_preview"),
    path("editions/<int:pk>/preview/html/", views.preview_html, name="preview_html"),
    path("editions/<int:pk>/preview/clients/", views.preview_clients, name="preview_clients"),
    path("editions/<int:pk>/test/", views.send_test, name="send_test"),
    path("editions/<int:pk>/stats/", views.edition_stats, name="edition_stats"),
    path("editions/<int:pk>/stats/progress/", views.edition_progress, name="edition_progress"),
    path("editions/<int:pk>/<str:action>/", views.edition_action, name="edition_action"),
]
