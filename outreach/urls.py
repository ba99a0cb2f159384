from django.urls import path

from . import views

app_name = "outreach"

urlpatterns = [
    path("", views.task_list, name="task_list"),
    path("badge/", views.task_badge, name="task_badge"),
    path("<int:pk>/done/", views.task_done, name="task_done"),
    path("new/", views.task_new, name="task_new"),
    path("<int:pk>/due/", views.task_due, name="task_due"),
    path("<int:pk>/outcome/", views.task_outcome, name="task_outcome"),
    path("<int:pk>/reassign/", views.task_reassign_view, name="task_reassign"),
]
