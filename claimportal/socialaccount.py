"""allauth's social accounts, configured by the environment alone."""

from allauth.socialaccount import adapter


class SettingsOnlyAdapter(adapter.DefaultSocialAccountAdapter):
    """Providers come from SOCIALACCOUNT_PROVIDERS (the environment) and never
    from SocialApp rows, so listing them costs a page no query."""

    def list_apps(self, request, provider=None, client_id=None) -> list:
        apps = adapter._build_apps_from_settings(provider=provider, client_id=client_id)
        return [app for provider_apps in apps.values() for app in provider_apps]
