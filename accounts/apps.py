from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Cloud accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.models import BlockedOrigin
        from accounts.services.provisioning import blocklist_changed

        post_save.connect(blocklist_changed, sender=BlockedOrigin)
        post_delete.connect(blocklist_changed, sender=BlockedOrigin)
