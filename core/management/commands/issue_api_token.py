"""Issue an API token for an internal system's service account (created when missing)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from core.models import Branch, Role
from core.services import api_token_issue


class Command(BaseCommand):
    help = ("Create the service account USERNAME if missing, give it a role, and print a new "
            "API token (only the key, on stdout). Any previous token of the account stops "
            "working.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", default=Role.OPS.value,
                            help=f"One of {', '.join(Role.values)} (default: ops).")
        parser.add_argument("--branch", default=None, help="Branch code (needed for rm and "
                                                           "branch_manager to see clients).")

    def handle(self, *args, username: str, role: str, branch: str | None, **options) -> None:
        username = username.strip()
        if not username:
            raise CommandError("A username is required.")
        if role not in Role.values:
            raise CommandError(f"Unknown role {role!r}; use one of: {', '.join(Role.values)}.")
        if branch and not Branch.objects.filter(code=branch).exists():
            raise CommandError(f"Branch {branch!r} does not exist; create it first "
                               f"(PUT /api/v1/branches/{branch}/ or the admin).")
        try:
            token = api_token_issue(username=username, role=role, branch_code=branch)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(token.key)
