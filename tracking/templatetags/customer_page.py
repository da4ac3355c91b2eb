"""Template helpers of the customer page: times the browser shows in the viewer's locale."""

from datetime import datetime

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html

register = template.Library()


@register.filter
def local_time(value: datetime | None, style: str = "datetime"):
    """A <time> element: formatted on the server (active language, server time zone) for readers
    without JavaScript, and reformatted by static/tracking/page.js in the browser's own locale and
    time zone. ``style`` is ``datetime`` or ``date``."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    fallback = formats.date_format(local, "DATE_FORMAT" if style == "date" else "DATETIME_FORMAT")
    if style != "date":
        fallback = f"{fallback} {local.tzname()}"
    return format_html(
        '<time datetime="{}" data-local="{}">{}</time>', value.isoformat(timespec="seconds"), style, fallback
    )
