"""Create the first admin from DJANGO_SUPERUSER_* once; safe to run on every deploy."""

import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create a superuser from DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_PASSWORD and (optional) "
        "DJANGO_SUPERUSER_EMAIL unless that user exists. Does nothing when no username is given; never "
        "changes an existing user (its password may have been changed in admin since)."
    )

    def handle(self, *args, **options):
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        if not username:
            self.stdout.write("superuser: DJANGO_SUPERUSER_USERNAME not set, none created")
            return
        user_model = get_user_model()
        if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
            # Checked first: once the admin exists its password may (and should) leave .env.
            self.stdout.write(f"superuser: {username} exists, left unchanged")
            return
        if not os.environ.get("DJANGO_SUPERUSER_PASSWORD"):
            # createsuperuser would make an account nobody can log in to; stop the deploy instead.
            raise CommandError("DJANGO_SUPERUSER_USERNAME is set but DJANGO_SUPERUSER_PASSWORD is not")
        # Django's own command reads the DJANGO_SUPERUSER_* variables in --noinput mode.
        call_command("createsuperuser", interactive=False, username=username, verbosity=0)
        self.stdout.write(f"superuser: {username} created")
