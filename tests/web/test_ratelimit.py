"""Anonymous callers are rate-limited per client address: token buckets and 429s."""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import World
from web.ratelimit import RateLimiter, client_key


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, monotonic=lambda: now[0])
    assert [limiter.take("a").allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.take("a")
    assert not refused.allowed and refused.retry_after == 1
    now[0] += 0.5  # one token back
    assert limiter.take("a").allowed
    assert not limiter.take("a").allowed
    now[0] += 100
    assert [limiter.take("a").allowed for _ in range(4)] == [True, True, True, False]


def test_retry_after_rounds_the_wait_up_to_whole_seconds():
    now = [0.0]
    limiter = RateLimiter(rate=0.1, burst=1, monotonic=lambda: now[0])
    assert limiter.take("a").allowed
    assert limiter.take("a").retry_after == 10
    now[0] += 2.5
    assert limiter.check("a").retry_after == 8


def test_clients_have_their_own_buckets_and_check_takes_nothing():
    limiter = RateLimiter(rate=1.0, burst=1, monotonic=lambda: 0.0)
    assert limiter.take("a").allowed
    assert not limiter.check("a").allowed
    assert limiter.check("b").allowed and limiter.check("b").allowed
    assert limiter.take("b").allowed


def test_only_the_most_recent_clients_are_remembered():
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=2, monotonic=lambda: 0.0)
    for key in ("a", "b", "c"):
        assert limiter.take(key).allowed
    assert limiter.take("a").allowed  # forgotten: a fresh bucket
    assert not limiter.take("c").allowed


def test_ipv6_clients_share_the_bucket_of_their_64_network():
    assert client_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:bbbb::9") == client_key("2001:db8:1:2::5")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("unix-socket") == "unix-socket"


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate=1, burst=0)


def client_at(app, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_anonymous_callers_get_429_with_retry_after_past_their_burst(world: World):
    app = world.app(rate_burst=3, rate_per_minute=6)
    async with client_at(app, "198.51.100.1") as client:
        statuses = [
            (await client.get("/v1/directory/search", params={"q": "martin"})).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        refused = await client.get("/v1/directory/search", params={"q": "martin"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "10"
        assert refused.json()["status"] == 429
        fhir = await client.get("/fhir/Practitioner", params={"family": "martin"})
        assert fhir.status_code == 429
        assert fhir.json()["issue"][0]["code"] == "throttled"
        assert fhir.headers["retry-after"] == "10"
        for path in ("/v1/directory/mailboxes/a@b.test", "/v1/directory/log/head"):
            assert (await client.get(path)).status_code == 429
        assert (await client.get("/healthz")).status_code == 200
        professional = await client.get(
            "/v1/directory/search", params={"q": "martin"}, headers=world.doctor.header()
        )
        assert professional.status_code == 200
    async with client_at(app, "198.51.100.2") as other:
        response = await other.get("/v1/directory/search", params={"q": "martin"})
        assert response.status_code == 200


async def test_addresses_of_one_ipv6_network_share_a_bucket(world: World):
    app = world.app(rate_burst=2)
    for host, expected in (
        ("2001:db8:5:6::1", 200),
        ("2001:db8:5:6::2", 200),
        ("2001:db8:5:6:ffff::3", 429),
        ("2001:db8:5:7::1", 200),
    ):
        async with client_at(app, host) as client:
            response = await client.get("/v1/directory/search", params={"q": "martin"})
            assert response.status_code == expected, host
