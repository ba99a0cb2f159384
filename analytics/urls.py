from django.urls import path

from . import pages, views

app_name = "analytics"

urlpatterns = [
    path("", views.home_page, name="home"),
    path("home/tasks/", views.home_tasks, name="home_tasks"),
    path("analytics/", pages.overview, name="overview"),
    path("analytics/retention/", pages.retention, name="retention"),
    path("analytics/funnel/", pages.funnel, name="funnel"),
    path("analytics/channels/", pages.channels, name="channels"),
    path("analytics/campaigns/", pages.campaigns, name="campaigns"),
    path("analytics/drill/", pages.drill, name="drill"),
    path("analytics/drill/save/", pages.drill_save, name="drill_save"),
    path("analytics/freshness/", pages.freshness_status, name="freshness"),
    path("analytics/refresh/", pages.refresh_now, name="refresh"),
]
