from django.urls import path

from . import views

app_name = "deals"

urlpatterns = [
    path("deals/<int:pk>/", views.deal_detail, name="deal_detail"),
    path("accounts/<int:pk>/", views.account_detail, name="account_detail"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact_detail"),
    path("state-machine/", views.state_machine, name="state_machine"),
]
