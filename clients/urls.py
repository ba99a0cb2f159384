from django.urls import path

from . import views

app_name = "clients"
urlpatterns = [
    path("", views.client_list, name="client_list"),
    path("<str:client_no>/", views.client_detail, name="client_detail"),
    path("<str:client_no>/interactions/", views.interaction_create, name="interaction_create"),
]
