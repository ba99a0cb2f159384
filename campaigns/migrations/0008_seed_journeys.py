"""The seeded journeys (campaigns.seeded) as drafts by the system account."""

from django.db import migrations


def seed(apps, schema_editor):
    from campaigns.seeded import JOURNEYS, SYSTEM_USERNAME

    User = apps.get_model("core", "User")
    Campaign = apps.get_model("campaigns", "Campaign")
    system, created = User.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"is_active": False, "first_name": "CRM",
                                            "last_name": "system"})
    if created:
        system.password = "!"  # unusable: nobody logs in as the system
        system.save(update_fields=["password"])
    for journey in JOURNEYS:
        if not Campaign.objects.filter(code=journey["code"]).exists():
            Campaign.objects.create(author=system, status="draft", **journey)


def unseed(apps, schema_editor):
    from campaigns.seeded import JOURNEYS

    apps.get_model("campaigns", "Campaign").objects.filter(
        code__in=[j["code"] for j in JOURNEYS], status="draft").delete()


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0007_journeys"), ("segments", "0005_seed_scenarios"),
                    ("core", "__first__")]
    operations = [migrations.RunPython(seed, unseed)]
