from django.urls import path

from . import views

app_name = "scoring"
urlpatterns = [
    path("", views.scoring_page, name="scoring_page"),
    path("runs/", views.scoring_runs, name="scoring_runs"),
    path("runs/start/", views.run_start, name="run_start"),
    path("runs/<int:pk>/resume/", views.run_resume, name="run_resume"),
    path("schemes/publish/", views.scheme_publish_view, name="scheme_publish"),
    path("migration/", views.migration_clients, name="migration_clients"),
]
