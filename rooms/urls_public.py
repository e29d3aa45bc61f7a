"""The buyer's room, mounted at /room/: no login needed (a signed link per contact)."""

from django.urls import path

from . import views_public

app_name = "rooms_public"

urlpatterns = [
    path("<str:token>/", views_public.room, name="room"),
    path("<str:token>/steps/<int:step_pk>/done/", views_public.step_tick, name="step_tick"),
    path("<str:token>/questions/", views_public.question_ask, name="question_ask"),
    path("<str:token>/files/", views_public.file_upload, name="file_upload"),
    path("<str:token>/files/<int:file_pk>/", views_public.file_open, name="file_open"),
    path("<str:token>/contract/", views_public.contract_read, name="contract"),
    path("<str:token>/contract/signed.pdf", views_public.contract_signed_pdf, name="signed_pdf"),
    path(
        "<str:token>/outcomes/<int:outcome_pk>/",
        views_public.outcome_confirm,
        name="outcome_confirm",
    ),
]
