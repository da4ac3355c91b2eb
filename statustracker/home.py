"""The site's front page: what the service is, and where staff and integrators go from here.

It is also where the admin's "View site" leads. Customers never need it: their page is reached
only through their personal link.
"""

from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def home_page(request):
    return render(request, "home.html")
