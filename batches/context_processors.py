from django.conf import settings


def dashboard(request):
    return {
        "dashboard_emulator": settings.DASHBOARD_EMULATOR,
        "dashboard_auth_mode": settings.DASHBOARD_AUTH,
        "dashboard_poll_seconds": settings.DASHBOARD_POLL_SECONDS,
    }
