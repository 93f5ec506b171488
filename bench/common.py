"""What every benchmark script reports with."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile of `values` (0.99: p99), in their own unit."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def link_identities(redis_url: str, pairs: list[tuple[str, str]], prefix: str = "kvisa") -> None:
    """Each (identity, founder) pair linked as /link links them (bot/applicants.py): the
    founder's applicant record lists both, the identity's own record forwards to it. The
    benchmark's users then write from an identity whose profile lives elsewhere, so every
    turn finds its applicant through the forward (`--linked`)."""
    import json

    import redis

    with redis.Redis.from_url(redis_url) as client, client.pipeline(transaction=False) as pipe:
        for identity, founder in pairs:
            applicant = {"schema": 2, "identities": [founder, identity], "lang": "en"}
            forward = {"linked_to": founder, "keep": "theirs", "link_id": f"{identity}@bench"}
            pipe.hset(f"{prefix}:user:{founder}", mapping={"v": 1, "data": json.dumps(applicant)})
            pipe.hset(f"{prefix}:user:{identity}", mapping={"v": 1, "data": json.dumps(forward)})
        pipe.execute()
