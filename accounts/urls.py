from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.health, name="health"),
    path("claim/<str:key>/", views.claim_landing, name="claim"),
    path("mine/", views.my_accounts, name="mine"),
]
