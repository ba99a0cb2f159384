from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from outreach import views as outreach_views

urlpatterns = [
    path("", include("analytics.urls")),
    path("accounts/", include("core.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("clients/", include("clients.urls")),
    path("imports/", include("clients.import_urls")),
    path("scoring/", include("clients.scoring.urls")),
    path("segments/", include("segments.urls")),
    path("newsletters/", include("newsletters.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("contact-policy/", outreach_views.contact_policy_page, name="contact_policy"),
    path("outreach/gateway/", include("outreach.channels.urls")),
    path("tasks/", include("outreach.urls")),
    path("n/", include("newsletters.public_urls")),
    path("o/", include("outreach.email.public_urls")),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The Swagger UI under the site's Content-Security-Policy: the split view serves its
    # start-up script as a file (script-src 'self'); its page keeps one inline <style> block.
    path("api/docs/", csp_update({"style-src": ["'unsafe-inline'"]})(
        SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
