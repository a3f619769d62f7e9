"""The web pages at /ui (docs/reference.md section 10) against the REAL service: a person's path through
them in headless Chromium (Debian's chromium and chromedriver, installed by
scripts/test-deps.sh) with the network closed to anything but 127.0.0.1, and the auth,
cookie and escaping rules over plain HTTP.

Screenshots of each page are kept under pytest's temporary folder; the path is printed
(`pytest tests/test_ui.py -s` shows it). The docs' own are taken by tests/test_ui_delivery.py."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from tests.browser import Shots, browser, heading, row_of, shoot, shots, wait
from tests.browser import sign_in as sign_in_with
from tests.conftest import Service
from tests.fixtures.eck import request_files
from tests.procs import running_server

PIPELINE = "s3cret"
ADMIN = "adm1n"
CONFIG = """
auth:
  tokens:
    - {name: pipeline, token: s3cret, promises: [elastic-cloud]}
    - {name: admin, token: adm1n, promises: ["*"], destinations: true}
"""
PROMISE = "elastic-cloud"
CRD = "elasticsearches.elasticsearch.k8s.elastic.co"
# Values that must never reach a page: a Secret's, and a pending bundle's document's
SECRET_VALUE = "TOP-SECRET-VALUE-1"
PENDING_VALUE = "TOP-SECRET-VALUE-2"
SECRET = ("apiVersion: v1\nkind: Secret\nmetadata: {name: example-credentials}\n"
          f"stringData: {{password: {SECRET_VALUE}}}\n")
CLASH = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elastic-operator, namespace: elastic-system}\n"
         "data: {owner: observability}\n")
HOSTILE = "<script>document.title='owned'</script>"
__all__ = ["browser", "shots"]  # the fixtures of tests/browser.py this module uses


def sign_in(driver: WebDriver, url: str) -> None:
    sign_in_with(driver, url, ADMIN)


def post_bundle(service: Service, namespace: str, name: str, files: dict[str, str], expect: int,
           token: str = PIPELINE, promise: str = PROMISE, **extra: Any) -> httpx.Response:
    body = {"promise": promise, "request": {"namespace": namespace, "name": name},
            "files": files, **extra}
    response = service.call("POST", "/v1/bundles", token, json=body)
    assert response.status_code == expect, response.text
    return response


def commits_of(service: Service, namespace: str, name: str) -> list[dict[str, Any]]:
    response = service.call("GET", f"/v1/promises/{PROMISE}/requests/{namespace}/{name}/history")
    assert response.status_code == 200, response.text
    commits: list[dict[str, Any]] = response.json()["commits"]
    return commits


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Two destinations, three placed requests (one with a Secret), one pending, and three
    refused bundles: invalid YAML, a conflict with another promise, a foreign promise."""
    root = tmp_path_factory.mktemp("ui")
    with running_server(root / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        service = Service.of(server, ADMIN)
        for name, body in (("worker-1", {"labels": {"env": "dev", "region": "eu-west-1"}}),
                           ("worker-2", {"labels": {"env": "prod"}, "path": "clusters/prod-2"})):
            response = service.call("PUT", f"/v1/destinations/{name}", json=body)
            assert response.status_code == 200, response.text
        post_bundle(service, "default", "example", {**request_files("example"), "credentials.yaml": SECRET},
               200, destinationSelectors={"env": "dev"},
               status={"phase": "Ready", "url": "https://example.es.internal"})
        post_bundle(service, "team-a", "analytics", request_files("analytics"), 200,
               destinationSelectors={"env": "dev"})
        post_bundle(service, "team-b", "logs", request_files("logs"), 200,
               destinationSelectors={"env": "prod"})
        pending = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: waiting}\n"
                   f"data: {{value: {PENDING_VALUE}}}\n")
        post_bundle(service, "default", "waiting", {"cm.yaml": pending}, 202,
               destinationSelectors={"env": "qa"})
        post_bundle(service, "default", "broken", {"es.yaml": "kind: [\n"}, 422)
        post_bundle(service, "monitoring", "grafana", {"cm.yaml": CLASH}, 409, token=ADMIN,
               promise="observability", pipeline="render", destinationSelectors={"env": "dev"})
        post_bundle(service, "default", "sneaky", {"cm.yaml": CLASH}, 403, promise="observability")
        yield service
        service.close()


def test_sign_in_with_the_form(browser: WebDriver, service: Service, shots: Shots) -> None:
    browser.delete_all_cookies()
    browser.get(f"{service.url}/ui/refused")
    heading(browser, "Sign in")
    assert "/ui/login" in browser.current_url
    shoot(browser, shots.folder, "01-sign-in")
    browser.find_element(By.ID, "token").send_keys("not-a-token")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".alert"),
                                                         "That token is not valid."))
    assert browser.get_cookie("statewriter_ui") is None
    browser.find_element(By.ID, "token").send_keys(ADMIN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    heading(browser, "Refused bundles")  # back where the browser was going
    cookie = browser.get_cookie("statewriter_ui")
    assert cookie is not None
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert browser.execute_script("return document.cookie") == ""  # no script can read it
    assert "Signed in as admin" in browser.find_element(By.CSS_SELECTOR, ".signout").text


def test_destinations_then_a_crds_owners(browser: WebDriver, service: Service, shots: Shots) -> None:
    sign_in(browser, service.url)
    browser.get(f"{service.url}/ui")
    heading(browser, "Destinations")
    table = browser.find_element(By.CSS_SELECTOR, "table.destinations")
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers == ["NAME", "LABELS", "PATH", "REQUESTS", "DEPENDENCIES", "RESOURCES"]
    cells = [td.text for td in row_of(table, "worker-1").find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "worker-1"
    assert "env" in cells[1] and "dev" in cells[1] and "region" in cells[1]
    assert cells[2] == "worker-1/"
    assert cells[3] == "2"  # default/example and team-a/analytics
    assert int(cells[4]) >= 10 and int(cells[5]) >= 6
    assert row_of(table, "worker-2").find_elements(By.TAG_NAME, "td")[2].text == "clusters/prod-2/"
    pending = browser.find_element(By.ID, "pending")
    assert "Pending requests" in pending.text
    assert "no destination matches the selectors" in browser.page_source
    shoot(browser, shots.folder, "02-destinations")

    browser.find_element(By.LINK_TEXT, "worker-1").click()
    heading(browser, "worker-1")
    crumbs = browser.find_element(By.CSS_SELECTOR, "nav.crumbs").text
    assert "Destinations" in crumbs and "worker-1" in crumbs
    dependencies = browser.find_element(By.CSS_SELECTOR, "table.dependencies")
    crd = row_of(dependencies, CRD)
    object_cell, path_cell, owners_cell = crd.find_elements(By.TAG_NAME, "td")
    assert "CustomResourceDefinition" in object_cell.text
    assert path_cell.text.replace("\n", "") == (
        f"worker-1/dependencies/_cluster/{CRD.partition('.')[2]}/"
        f"CustomResourceDefinition.apiextensions.k8s.io_{CRD}.yaml")
    owners = owners_cell.find_elements(By.CSS_SELECTOR, "a.owner")
    assert sorted(a.text for a in owners) == ["default/example", "team-a/analytics"]
    assert f"{PROMISE} · default" in owners_cell.text
    requests = browser.find_element(By.CSS_SELECTOR, "table.requests")
    example = row_of(requests, "default/example")
    assert "Scheduled" in example.find_element(By.CSS_SELECTOR, ".badge").text
    assert "team-b/logs" not in requests.text  # placed on worker-2
    shoot(browser, shots.folder, "03-destination")

    link = next(a for a in owners if a.text == "default/example")
    assert link.get_attribute("href") == f"{service.url}/ui/promises/{PROMISE}/requests/default/example"
    link.click()
    heading(browser, "default/example")


def test_a_request_its_history_and_a_commits_diff(browser: WebDriver, service: Service,
                                                   shots: Shots) -> None:
    sign_in(browser, service.url)
    browser.get(f"{service.url}/ui/promises/{PROMISE}/requests/default/example")
    title = heading(browser, "default/example")
    assert "Scheduled" in title.text
    facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert PROMISE in facts and "worker-1" in facts
    pipelines = browser.find_element(By.CSS_SELECTOR, "table.pipelines")
    assert '"phase": "Ready"' in pipelines.text  # the pipeline's status
    objects = browser.find_element(By.CSS_SELECTOR, "table.objects")
    elasticsearch = row_of(objects, "Elasticsearch")
    assert "resources" in elasticsearch.text and "worker-1" in elasticsearch.text
    assert "default_Elasticsearch.elasticsearch.k8s.elastic.co_example.yaml" in \
        elasticsearch.text.replace("\n", "")
    assert "shared" in row_of(objects, CRD).text
    history = browser.find_element(By.CSS_SELECTOR, "table.history")
    commits = commits_of(service, "default", "example")
    rows = history.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == len(commits) == 1
    cells = [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0] == commits[0]["sha"][:12]
    assert cells[1] == commits[0]["time"].replace("T", " ").removesuffix("Z")
    assert cells[2:4] == ["pipeline", "apply"]
    files = rows[0].find_element(By.CSS_SELECTOR, "details.files")
    files.find_element(By.TAG_NAME, "summary").click()  # the list opens without a script
    wait(browser).until(lambda _: "default_Secret_example-credentials.yaml" in files.text)
    shoot(browser, shots.folder, "04-request")

    rows[0].find_element(By.CSS_SELECTOR, "a.sha").click()
    heading(browser, f"apply {PROMISE} default/example")
    assert commits[0]["sha"] in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    stat = browser.find_element(By.CSS_SELECTOR, "table.stat")
    secret_row = row_of(stat, "Secret_example-credentials")
    assert "content hidden" in secret_row.text
    diff = browser.find_element(By.CSS_SELECTOR, "pre.diff").text
    assert "+kind: Elasticsearch" in diff and "+  name: example" in diff
    assert "Not shown: the content of Secret objects" in browser.page_source
    assert SECRET_VALUE not in browser.page_source
    crumbs = browser.find_element(By.CSS_SELECTOR, "nav.crumbs")
    crumbs.find_element(By.LINK_TEXT, "default/example")  # the way back
    shoot(browser, shots.folder, "05-commit")


def test_refused_bundles_with_their_reasons(browser: WebDriver, service: Service,
                                            shots: Shots) -> None:
    sign_in(browser, service.url)
    browser.get(f"{service.url}/ui")
    browser.find_element(By.LINK_TEXT, "Refused bundles").click()
    heading(browser, "Refused bundles")
    table = browser.find_element(By.CSS_SELECTOR, "table.refused")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, ".badge").text for r in rows] == [
        "403 Forbidden", "409 Conflict", "422 InvalidBundle"]  # newest first
    forbidden, conflict, invalid = ([td.text for td in r.find_elements(By.TAG_NAME, "td")]
                                    for r in rows)
    assert invalid[2:6] == [PROMISE, "default/broken", "default", "pipeline"]
    assert "es.yaml: document 0: invalid YAML" in invalid[6]
    assert conflict[2:6] == ["observability", "monitoring/grafana", "render", "admin"]
    assert "differs from the stored object (another promise's dependency)" in conflict[6]
    assert "destination worker-1" in conflict[6]
    assert "token 'pipeline' may not write promise 'observability'" in forbidden[6]
    link = row_of(table, "default/broken").find_element(By.LINK_TEXT, "default/broken")
    shoot(browser, shots.folder, "06-refused")
    link.click()  # a request that was never stored: its refusals are still there
    heading(browser, "default/broken")
    assert "not stored" in browser.find_element(By.TAG_NAME, "h1").text
    assert "invalid YAML" in browser.find_element(By.CSS_SELECTOR, "table.refused").text


def test_pending_bundle_documents_are_never_shown(browser: WebDriver, service: Service) -> None:
    sign_in(browser, service.url)
    (commit,) = commits_of(service, "default", "waiting")
    browser.get(f"{service.url}/ui/commits/{commit['sha']}")
    heading(browser, f"apply {PROMISE} default/waiting")
    stat = browser.find_element(By.CSS_SELECTOR, "table.stat")
    stored = row_of(stat, ".statewriter/bundles/")
    assert "content hidden" in stored.text
    assert PENDING_VALUE not in browser.page_source
    assert "pending bundle documents under .statewriter/bundles/" in browser.page_source


def test_docs_and_redoc_render_offline(browser: WebDriver, service: Service, shots: Shots) -> None:
    """Swagger UI and ReDoc come from the service itself: with every other host unreachable
    they still list the operations, and every resource the pages loaded is the service's."""
    browser.get(f"{service.url}/docs")
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    operations = browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    assert "/v1/bundles" in [op.text.replace("\u200b", "") for op in operations]
    shoot(browser, shots.folder, "07-docs")
    assert_all_local(browser, service.url)
    browser.get(f"{service.url}/redoc")
    wait(browser).until(lambda driver: "/v1/bundles" in driver.find_element(By.TAG_NAME, "body").text)
    assert browser.find_elements(By.CSS_SELECTOR, "h2")  # the operations' headings
    shoot(browser, shots.folder, "08-redoc")
    # ReDoc's bundled script points its "API docs by Redocly" footer at a logo on its CDN:
    # that one picture is missing offline, and nothing else may come from elsewhere
    assert_all_local(browser, service.url, allowed={"https://cdn.redoc.ly/redoc/logo-mini.svg"})


def assert_all_local(driver: WebDriver, url: str, allowed: frozenset[str] | set[str] = frozenset()
                     ) -> None:
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded, "the page loaded nothing"
    elsewhere = [name for name in loaded if not name.startswith(url) and name not in allowed]
    assert not elsewhere, f"resources from elsewhere: {elsewhere}"


def test_sign_out(browser: WebDriver, service: Service) -> None:
    sign_in(browser, service.url)
    browser.get(f"{service.url}/ui")
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    heading(browser, "Sign in")
    assert browser.get_cookie("statewriter_ui") is None
    browser.get(f"{service.url}/ui")
    heading(browser, "Sign in")


def test_hostile_names_stay_text(browser: WebDriver, service: Service) -> None:
    response = service.call("PUT", "/v1/destinations/edge-9", json={"labels": {"note": HOSTILE}})
    assert response.status_code == 200, response.text
    page = service.call("GET", "/ui")
    assert page.status_code == 200
    assert "&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;" in page.text
    assert "<script" not in page.text
    sign_in(browser, service.url)
    browser.get(f"{service.url}/ui/destinations/edge-9")
    heading(browser, "edge-9")
    assert HOSTILE in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert browser.title == "Destination edge-9 · statewriter"
    assert browser.find_elements(By.TAG_NAME, "script") == []


# -- plain HTTP: auth, cookies, answers --------------------------------------------------------


def test_without_credentials_pages_send_to_the_login_form(service: Service) -> None:
    for path, target in (("/ui", "/ui"), ("/ui/refused", "/ui/refused"),
                         ("/ui/destinations/worker-1?page=2", "/ui/destinations/worker-1%3Fpage%3D2")):
        response = service.call("GET", path, token=None)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/ui/login?next={target}"
    login = service.call("GET", "/ui/login?next=/ui/refused", token=None)
    assert login.status_code == 200
    assert 'name="next" value="/ui/refused"' in login.text
    assert 'type="password"' in login.text


def test_wrong_credentials_are_401(service: Service) -> None:
    wrong = base64.b64encode(b"x:nope").decode()
    response = service.call("GET", "/ui", token=None, headers={"authorization": f"Basic {wrong}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="statewriter"'
    assert "Sign-in needed" in response.text and response.headers["content-type"].startswith("text/html")
    response = service.call("GET", "/ui", token="nope")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="statewriter"'


def test_basic_auth_takes_the_token_as_password(service: Service) -> None:
    basic = base64.b64encode(f"anyone:{PIPELINE}".encode()).decode()
    response = service.call("GET", "/ui/destinations/worker-1", token=None,
                            headers={"authorization": f"Basic {basic}"})
    assert response.status_code == 200
    assert "Signed in as <strong>pipeline</strong>" in response.text
    assert service.call("GET", "/ui/refused", token=PIPELINE).status_code == 200  # bearer too


OWN_PAGE = {"sec-fetch-site": "same-origin"}  # what a browser sends with the login form


def test_the_login_cookie(service: Service) -> None:
    response = service.call("POST", "/ui/login", token=None, headers=OWN_PAGE,
                            data={"token": PIPELINE, "next": "/ui/destinations/worker-2"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/destinations/worker-2"
    cookie = response.headers["set-cookie"]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/ui", "samesite=strict"} <= flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    assert PIPELINE not in cookie  # a signed session value, scoped to /ui
    value = cookie.split(";")[0].split("=", 1)[1]
    page = httpx.get(f"{service.url}/ui/destinations/worker-2", cookies={"statewriter_ui": value})
    assert page.status_code == 200 and "team-b/logs" in page.text
    # Behind a TLS-terminating proxy (X-Forwarded-Proto from a trusted address) it is Secure
    secure = service.call("POST", "/ui/login", token=None, data={"token": PIPELINE},
                          headers={"x-forwarded-proto": "https", **OWN_PAGE})
    assert "secure" in {part.strip().lower() for part in secure.headers["set-cookie"].split(";")}


def test_login_refusals(service: Service) -> None:
    response = service.call("POST", "/ui/login", token=None, headers=OWN_PAGE,
                            data={"token": "nope", "next": "/ui"})
    assert response.status_code == 401
    assert "That token is not valid." in response.text and "set-cookie" not in response.headers
    # Only pages of its own are a place to go on to
    for target in ("//evil.example/ui", "https://evil.example", "/uix", "/ui\\@evil", "/docs"):
        response = service.call("POST", "/ui/login", token=None, headers=OWN_PAGE,
                                data={"token": ADMIN, "next": target})
        assert response.headers["location"] == "/ui", target
    response = service.call("POST", "/ui/login", token=None, data={"token": ADMIN},
                            headers={"sec-fetch-site": "cross-site"})
    assert response.status_code == 403
    expired = httpx.get(f"{service.url}/ui", cookies={"statewriter_ui": "bm90LWEtdG9rZW4"})
    assert expired.status_code == 303
    assert expired.headers["location"] == "/ui/login?next=/ui&expired=1"
    assert 'statewriter_ui=""' in expired.headers["set-cookie"] or \
        "max-age=0" in expired.headers["set-cookie"].lower()


def test_pages_are_html_with_strict_headers(service: Service) -> None:
    page = service.call("GET", "/ui")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert re.search(r'<link rel="stylesheet" href="/ui/static/ui\.css\?v=[^"]+">', page.text)
    assert service.call("GET", "/ui/static/ui.css", token=None).status_code == 200
    for path in ("/ui/destinations/nowhere", f"/ui/promises/{PROMISE}/requests/default/nobody",
                 "/ui/commits/0123456789abcdef0123456789abcdef01234567", "/ui/commits/HEAD"):
        missing = service.call("GET", path)
        assert missing.status_code == 404, path
        assert "Not found" in missing.text
    assert service.call("GET", "/ui/destinations/worker-1?page=x").status_code == 422
    assert "/ui" not in service.call("GET", "/openapi.json").json()["paths"]


def test_api_docs_show_operations_by_summary_offline(browser: WebDriver, service: Service,
                                                     shots: Shots) -> None:
    """/docs and /redoc, with every host but 127.0.0.1 unreachable (the `browser` fixture),
    show the operations by their summaries and the ECK bundle as the example of a bundle."""
    browser.get(f"{service.url}/docs")
    bundles = (By.XPATH, "//*[contains(@class, 'opblock-summary-description')]"
                         "[normalize-space() = 'Submit a bundle']")
    wait(browser).until(ec.visibility_of_element_located(bundles)).click()
    operation = (By.ID, "operations-bundles-post_bundle")
    wait(browser).until(ec.text_to_be_present_in_element(operation, "elastic-crds.yaml"))
    assert browser.find_element(By.XPATH, "//*[contains(@class, 'opblock-summary-description')]"
                                          "[normalize-space() = 'All destinations']").is_displayed()
    shoot(browser, shots.folder, "09-docs-submit-a-bundle")
    browser.get(f"{service.url}/redoc")
    heading = (By.XPATH, "//h2[normalize-space() = 'Submit a bundle']")
    assert wait(browser).until(ec.visibility_of_element_located(heading)).is_displayed()
    wait(browser).until(lambda driver: "elastic-crds.yaml" in driver.find_element(
        By.TAG_NAME, "body").text)  # the request sample: the ECK bundle
    shoot(browser, shots.folder, "10-redoc-submit-a-bundle")
