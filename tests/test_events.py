"""The event hub: topics, unsubscribing, and a failing subscriber that breaks nothing."""
from jobjoker.events import ALL, CHANGES, EventHub


def entries(job_id):
    return {"type": "entries", "job_id": job_id, "stream": "log", "seq": 0, "block": b"",
            "count": 0}


def job_event(job_id, action="status"):
    return {"type": "job", "action": action, "job": {"id": job_id}}


def test_topics_route_events_to_whoever_follows_them():
    hub = EventHub()
    seen = {"a": [], "b": [], "changes": [], "all": []}
    hub.subscribe(seen["a"].append, "a")
    hub.subscribe(seen["b"].append, "b")
    hub.subscribe(seen["changes"].append, CHANGES)
    hub.subscribe(seen["all"].append, ALL)
    events = [entries("a"), job_event("a"), entries("b"),
              {"type": "worker", "action": "saved", "name": "W"}]
    for event in events:
        hub.publish(event)
    assert seen["a"] == events[:2]
    assert seen["b"] == [events[2]]
    assert seen["changes"] == [events[1], events[3]]  # changes, never entries
    assert seen["all"] == events


def test_unsubscribe_and_counts():
    hub = EventHub()
    seen = []
    unsubscribe = hub.subscribe(seen.append, "a")
    assert hub.subscriber_count() == 1 and hub.subscriber_count("a") == 1
    unsubscribe()
    unsubscribe()  # twice is harmless
    hub.publish(entries("a"))
    assert seen == [] and hub.subscriber_count() == 0


def test_a_failing_subscriber_does_not_stop_the_others(caplog):
    hub = EventHub()
    seen = []

    def broken(event):
        raise RuntimeError("boom")
    hub.subscribe(broken, "a")
    hub.subscribe(seen.append, "a")
    hub.publish(entries("a"))
    assert len(seen) == 1
    assert "failed on a entries event" in caplog.text
