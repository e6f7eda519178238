import redis

from app.embedded_redis import start_private_redis


def test_private_redis_starts_answers_and_stops() -> None:
    server = start_private_redis()
    client = redis.Redis.from_url(server.url)
    assert client.ping() is True
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    server.stop()
    assert server.process.poll() is not None
