"""Rep-facing contract URLs and the DocuSign webhook (mounted at /contracts/)."""

from django.urls import path

from . import views

app_name = "contracts"

urlpatterns = [
    path("deals/<int:deal_pk>/generate/", views.generate, name="generate"),
    path("versions/<int:pk>/", views.preview, name="preview"),
    path("versions/<int:pk>/document/", views.document_html, name="document_html"),
    path("versions/<int:pk>/contract.pdf", views.document_pdf, name="pdf"),
    path("versions/<int:pk>/signed.pdf", views.signed_pdf, name="signed_pdf"),
    path("versions/<int:pk>/send/", views.send, name="send"),
    path("versions/<int:pk>/resend/", views.resend, name="resend"),
    path("versions/<int:pk>/void/", views.void, name="void"),
    path(
        "deals/<int:deal_pk>/versions/<int:pk>/accept-late-signature/",
        views.late_signature_accept,
        name="late_signature_accept",
    ),
    path("verify/", views.verify, name="verify"),
    path("versions/<int:pk>/signing-view/", views.signing_view, name="signing_view"),
    path("versions/<int:pk>/signing-return/", views.signing_return, name="signing_return"),
    # Exact URL, no redirect: DocuSign counts a redirect as a failed delivery.
    path("webhooks/docusign/", views.docusign_webhook, name="docusign_webhook"),
]
