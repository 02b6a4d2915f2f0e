"""The review page's security: the token, the Host it answers to, same-origin decisions, and media
that only the run's own files can answer."""

from __future__ import annotations

import http.client
import re

import httpx
import pytest
from starlette.datastructures import Headers, QueryParams

from soraflow.redaction import redact_text
from soraflow.screening import Access, is_loopback
from soraflow.screening._access import new_token

PAGE_ROUTES = ["/", "/page.js", "/page.css", "/api/state", "/media/film", "/media/takes/b/2", "/no/such/route"]


def raw_get(port: int, path: str, token: str | None = None) -> int:
    """The status of GET ``path`` sent byte for byte as given (an HTTP library would remove the
    dot segments a hostile client sends)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        if token:
            conn.putheader("Authorization", f"Bearer {token}")
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("[::1]", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("example.org", False), ("", False)],
)
def test_loopback_is_told_apart(address, loopback):
    assert is_loopback(address) is loopback


def test_beyond_loopback_every_request_needs_the_token(harbour, review_page):
    with review_page(harbour.review, host="0.0.0.0") as page:
        assert not page.loopback
        base = f"http://127.0.0.1:{page.port}"
        for route in PAGE_ROUTES:
            refused = httpx.get(base + route)
            assert refused.status_code == 401, route
            assert refused.headers["www-authenticate"].startswith("Bearer") and page.token not in refused.text
            assert httpx.get(base + route, params={"token": "not-the-token"}).status_code == 401, route
            assert httpx.get(base + route, headers={"Authorization": "Bearer not-the-token"}).status_code == 401, route
        assert httpx.head(f"{base}/media/film").status_code == 401
        assert httpx.post(f"{base}/api/decision", json={"shots": []}).status_code == 401
        # with the token (query or header) every page route answers
        for route in PAGE_ROUTES[:-1]:
            assert httpx.get(base + route, params={"token": page.token}).status_code == 200, route
            assert httpx.get(base + route, headers={"Authorization": f"Bearer {page.token}"}).status_code == 200, route
        # the page asks for its own script and stylesheet with the token it was opened with
        html = httpx.get(base + "/", params={"token": page.token}).text
        assert f'src="/page.js?token={page.token}"' in html and f'href="/page.css?token={page.token}"' in html
        assert page.url == f"{page.base_url}/?token={page.token}"
        # the token is a registered secret: no error message can carry it
        assert page.token not in redact_text(f"could not answer {page.url}")


def test_on_loopback_reading_is_open_and_deciding_needs_the_token_from_the_page_itself(harbour, review_page):
    with review_page(harbour.review) as page:
        assert page.loopback
        base = page.base_url
        for route in PAGE_ROUTES[:-1]:
            answer = httpx.get(base + route)
            assert answer.status_code == 200, route
            assert "default-src 'none'" in answer.headers["content-security-policy"]
            assert answer.headers["referrer-policy"] == "no-referrer" and answer.headers["x-content-type-options"] == "nosniff"
        assert 'src="/page.js"' in httpx.get(base + "/").text  # no token asked: none put in the page
        decision = {"shots": [{"shot": "b", "keep": 2}]}
        assert httpx.post(f"{base}/api/decision", json=decision).status_code == 401
        assert httpx.post(f"{base}/api/decision", json=decision, params={"token": "nope"}).status_code == 401
        auth = {"Authorization": f"Bearer {page.token}"}
        other_site = httpx.post(f"{base}/api/decision", json=decision, headers={**auth, "Origin": "http://evil.example"})
        assert other_site.status_code == 403 and "Origin" in other_site.json()["error"]
        cross_site = httpx.post(f"{base}/api/decision", json=decision, headers={**auth, "Sec-Fetch-Site": "cross-site"})
        assert cross_site.status_code == 403
        form_post = httpx.post(f"{base}/api/decision", data={"shots": "b"}, headers=auth)
        assert form_post.status_code == 415
        assert httpx.get(f"{base}/api/decision", headers=auth).status_code == 405  # decisions by POST only
        # the page's own origin passes (the review names no run: nothing to resume, said plainly)
        same = httpx.post(f"{base}/api/decision", json=decision, headers={**auth, "Origin": base, "Sec-Fetch-Site": "same-origin"})
        assert same.status_code == 409 and "names no flow run" in same.json()["error"]
        # a page elsewhere that rebinds its name to 127.0.0.1 reaches this server with its own Host
        rebound = httpx.get(f"{base}/api/state", headers={"Host": f"evil.example:{page.port}"})
        assert rebound.status_code == 400
        assert httpx.get(f"{base}/api/state", headers={"Host": f"localhost:{page.port}"}).status_code == 200


TRAVERSALS = [
    "/media/../../../../etc/passwd",
    "/media/takes/../../../../etc/passwd",
    "/media/takes/b/../../../../../etc/passwd",
    "/media/takes/..%2F..%2F..%2Fetc%2Fpasswd/1",
    "/media/takes/%2e%2e/1",
    "/media//etc/passwd",
    "/media/takes//etc/passwd/1",
    "/media/takes/b/1/../../../../etc/passwd",
    "/media/film/../../../etc/passwd",
    "/media/%2Fetc%2Fpasswd",
    "/media/file:///etc/passwd",
    "//etc/passwd",
    "/../../etc/passwd",
    "/page.js/../../../etc/passwd",
    "/media/takes/b/1?path=/etc/passwd",
]


def test_dot_dot_and_absolute_paths_find_nothing(harbour, review_page):
    with review_page(harbour.review, host="0.0.0.0") as page:
        for path in TRAVERSALS:
            status = raw_get(page.port, path, page.token)
            assert status == 404 or (path.endswith("?path=/etc/passwd") and status == 200), (path, status)
            assert raw_get(page.port, path) == 401, path  # and without the token, nothing at all


@pytest.mark.parametrize(
    "outside",
    [
        "file:///etc/passwd",
        "file://{store}/../../../etc/passwd",
        "file://{store}/%2e%2e/%2e%2e/etc/passwd",
        "s3://another-bucket/the-harbour/clips/b-p1.mp4",
        "/etc/passwd",
        "{store}/the-harbour/../../../etc/passwd",
    ],
)
def test_a_review_naming_a_file_outside_the_run_serves_nothing(harbour, review_page, outside):
    """Only the run's own files: a storage URI outside its storage and output directory is not
    served, even when the review names it."""
    uri = outside.format(store=harbour.store.root)

    def hostile(out_dir):
        state = harbour.review(out_dir)
        shots = [s.model_copy(update={"takes": [t.model_copy(update={"storage_uri": uri}) for t in s.takes]}) for s in state.shots]
        return state.model_copy(update={"shots": shots, "film_uri": uri})

    with review_page(hostile) as page:
        for path in ("/media/film", "/media/takes/a/1", "/media/takes/b/2"):
            answer = httpx.get(page.base_url + path)
            assert answer.status_code == 404 and "root:" not in answer.text, (path, answer.text)


def test_the_token_is_compared_whole():
    access = Access(token="s3cret-token-value", loopback=False)
    assert access.has_token(Headers({"authorization": "Bearer s3cret-token-value"}), QueryParams(""))
    assert access.has_token(Headers({}), QueryParams("token=s3cret-token-value"))
    for wrong in ("s3cret-token-valu", "s3cret-token-value2", "", "S3CRET-TOKEN-VALUE"):
        assert not access.has_token(Headers({"authorization": f"Bearer {wrong}"}), QueryParams(f"token={wrong}"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", new_token()) and new_token() != new_token()
