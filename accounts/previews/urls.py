"""URLs of the internal binding endpoints (served only by the runtime)."""

urlpatterns: list = []
