import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Value scoring lives in a package of the clients app; its tasks module is found here.
app.autodiscover_tasks(["clients.scoring"])
# The SMS and push sender and the email dispatcher live in packages of the outreach app.
app.autodiscover_tasks(["outreach.channels", "outreach.email"])
