from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Cloud accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.models import BlockedOrigin
        from accounts.services.provisioning import blocklist_changed

        # However a block is made or lifted (admin, moderation, a shell), the
        # provisioning calls stop using the blocklist they had read.
        for signal in (post_save, post_delete):
            signal.connect(
                lambda **_: blocklist_changed(),
                sender=BlockedOrigin,
                weak=False,
                dispatch_uid=f"blocklist-changed-{signal is post_save}",
            )
