from django.contrib import admin
from django.urls import include, path

from accounts import discovery

urlpatterns = [
    path("client/v4/", include("accounts.api.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    # Agent discovery: how to get a temporary account without a person.
    path("auth.md", discovery.auth_md, name="auth-md"),
    path(".well-known/auth.md", discovery.auth_md, name="well-known-auth-md"),
    path("llms.txt", discovery.llms_txt, name="llms-txt"),
    path("", include("accounts.urls")),
]

handler404 = "accounts.views.page_not_found"
handler500 = "accounts.views.server_error"
