"""Approval covers everything, eagerly: a save of a product, a segment or a publication made
anywhere (the API, an import row, the admin, a shell) puts every approved or scheduled edition
whose approval it breaks back to draft at once. clients and segments cannot import newsletters,
so newsletters listens. Bulk writes send no signal: the minute beat and the hash check on every
send path (newsletters.services) are the guarantee; this is so people see it at once."""

from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from clients.models import Product
from core.middleware import current_request
from segments.models import Segment

from .models import Edition, Publication

# A segment save that touches none of these (a refresh's size, a rename) changes nothing
# an approval covers.
SEGMENT_FIELDS = frozenset({"code", "kind", "rule", "rule_version"})


def _actor():
    request = current_request()
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


@receiver(post_save, sender=Product, dispatch_uid="newsletters_product_approval")
def _product_saved(sender, instance, created, **kwargs):
    from .services import editions_approval_recheck

    editions_approval_recheck(product_code=instance.product_code, actor=_actor())


@receiver(post_save, sender=Segment, dispatch_uid="newsletters_segment_approval")
def _segment_saved(sender, instance, created, update_fields=None, **kwargs):
    if created or (update_fields is not None and not SEGMENT_FIELDS & set(update_fields)):
        return
    from .services import editions_approval_recheck

    editions_approval_recheck(actor=_actor())  # the audience, or a segment its rule uses


@receiver(post_save, sender=Publication, dispatch_uid="newsletters_publication_approval")
def _publication_saved(sender, instance, created, **kwargs):
    if created or getattr(instance, "_approval_rechecked_by_service", False):
        return  # services.publication_update rechecks itself, with its actor
    from .services import editions_approval_recheck

    editions_approval_recheck(publication_id=instance.pk, actor=_actor())


@receiver(pre_delete, sender=Edition, dispatch_uid="newsletters_edition_outbox")
def edition_outbox_delete(sender, instance: Edition, **kwargs):
    """An edition deleted (only the admin can) takes its outbox rows with it, as the foreign
    key did before the outbox moved to outreach (its rows name their source by id)."""
    instance.deliveries.delete()
