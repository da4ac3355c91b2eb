"""The front page at / (where the admin's "View site" leads) and the admin's own name."""

import re

import pytest

pytestmark = pytest.mark.django_db


def links(response) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', response.content.decode())


def test_the_front_page_says_what_the_service_is_and_where_to_go(client):
    response = client.get("/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "<title>statustracker</title>" in body
    assert "statustracker follows service requests" in body
    assert links(response) == ["/admin/", "/api/docs/", "/healthz"]
    # Each link leads somewhere: the admin to its login, the docs and the health check answer.
    assert client.get("/admin/").status_code == 302
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/healthz").status_code in (200, 503)


def test_the_front_page_speaks_german_when_the_browser_asks(client):
    body = client.get("/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert '<html lang="de">' in body
    assert "Wo steht meine Anfrage?" in body


def test_the_admin_is_named_statustracker_and_view_site_works(admin_client):
    body = admin_client.get("/admin/").content.decode()

    assert re.search(r"<title>[^<]*\| statustracker admin</title>", body)
    assert '<div id="site-name"><a href="/admin/">statustracker</a></div>' in body
    assert "Django administration" not in body
    view_site = re.search(r'<a href="([^"]+)">View site</a>', body).group(1)
    assert admin_client.get(view_site).status_code == 200
