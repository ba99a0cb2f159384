from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("", views.home_page, name="home"),
    path("home/tasks/", views.home_tasks, name="home_tasks"),
]
