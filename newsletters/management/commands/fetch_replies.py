"""`manage.py fetch_replies [--limit N]`: fetch the reply mailbox once and print the counts."""

from django.core.management.base import BaseCommand, CommandError

from newsletters.mailbox import replies_fetch


class Command(BaseCommand):
    help = ("Fetch new email replies from NEWSLETTER_REPLY_MAILBOX_URL once (what Celery beat "
            "does every minute) and print the counts; use it to check the configuration.")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None,
                            help="At most this many messages (default: "
                                 "NEWSLETTER_REPLY_FETCH_BATCH).")

    def handle(self, *args, limit, **options):
        result = replies_fetch(limit=limit)
        if not result["configured"]:
            raise CommandError("NEWSLETTER_REPLY_MAILBOX_URL is not set: email replies are off")
        self.stdout.write(" ".join(f"{key}={result[key]}" for key in
                                   ("fetched", "ingested", "ignored", "errors", "remaining")
                                   if key in result))
        if "skipped" in result:
            self.stdout.write(f"skipped: {result['skipped']}")
        if "error" in result:
            raise CommandError(f"reply mailbox: {result['error']}")
