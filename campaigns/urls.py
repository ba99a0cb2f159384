from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list_view, name="campaign_list"),
    path("new/", views.campaign_new, name="campaign_new"),
    path("preview/", views.campaign_preview_view, name="campaign_preview"),
    path("turbulence/", views.campaign_turbulence, name="campaign_turbulence"),
    path("<slug:code>/", views.campaign_detail, name="campaign_detail"),
    path("<slug:code>/edit/", views.campaign_edit, name="campaign_edit"),
    path("<slug:code>/launch-status/", views.campaign_launch_status, name="launch_status"),
    path("<slug:code>/members/", views.campaign_members_view, name="campaign_members"),
    path("<slug:code>/results/", views.campaign_results_view, name="campaign_results"),
    path("<slug:code>/<str:action>/", views.campaign_action, name="campaign_action"),
]
