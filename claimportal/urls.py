from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("client/v4/", include("accounts.api.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
]

handler404 = "accounts.views.page_not_found"
handler500 = "accounts.views.server_error"
