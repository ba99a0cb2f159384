from django.urls import path

from . import import_views

app_name = "imports"
urlpatterns = [
    path("", import_views.import_list, name="import_list"),
    path("<int:pk>/", import_views.import_detail, name="import_detail"),
    path("<int:pk>/progress/", import_views.import_progress, name="import_progress"),
    path("<int:pk>/errors.csv", import_views.import_errors_csv, name="import_errors_csv"),
    path("template/<str:kind>.csv", import_views.import_template, name="import_template"),
]
