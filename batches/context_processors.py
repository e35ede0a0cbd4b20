from django.conf import settings

from .auth import user_can_operate


def dashboard(request):
    return {
        "dashboard_emulator": settings.DASHBOARD_EMULATOR,
        "dashboard_auth_mode": settings.DASHBOARD_AUTH,
        "dashboard_can_operate": hasattr(request, "user") and user_can_operate(request),
        "dashboard_poll_seconds": settings.DASHBOARD_POLL_SECONDS,
    }
