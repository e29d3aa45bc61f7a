"""The buyer's signing pages (built-in provider), mounted at /sign/: no login needed."""

from django.urls import path

from . import views_public

app_name = "contracts_public"

urlpatterns = [
    path("<str:token>/", views_public.sign_page, name="sign"),
    path("<str:token>/document/", views_public.sign_document, name="document"),
    path("<str:token>/contract.pdf", views_public.sign_pdf, name="pdf"),
    path("<str:token>/sign/", views_public.sign_submit, name="submit"),
    path("<str:token>/decline/", views_public.decline_submit, name="decline"),
]
