"""nodes.worker.Worker: one job at a time, kicks never lost (policy_node's backlog drain)."""

from __future__ import annotations

import threading
from collections import deque

from restac_ros.nodes.worker import Worker


def test_an_item_queued_while_the_drain_finishes_is_still_drained():
    """The drain loop has seen an empty queue and is about to return when a new item is
    queued and kicked: the kick must run the loop again (with submit it was lost)."""
    queue: deque = deque()
    done: list = []
    at_end, release = threading.Event(), threading.Event()

    def drain(_job) -> None:
        while queue:
            done.append(queue.popleft())
        if len(done) == 1:  # the first drain ends here, with the queue empty...
            at_end.set()
            release.wait(10.0)

    errors: list = []
    worker = Worker("test-drain", drain, errors.append)
    try:
        queue.append(1)
        worker.kick()
        assert at_end.wait(10.0)
        queue.append(2)  # ...while the caller queues one more
        assert worker.submit(None) is False  # busy: a plain submit would drop it
        worker.kick()
        release.set()
        deadline = threading.Event()
        for _ in range(200):
            if done == [1, 2] and not worker.busy:
                break
            deadline.wait(0.05)
        assert done == [1, 2] and not worker.busy and errors == []
    finally:
        release.set()
        assert worker.stop(10.0)


def test_kicks_coalesce_and_stop_refuses_new_work():
    runs: list = []
    gate = threading.Event()
    worker = Worker("test-coalesce", lambda job: (runs.append(job), gate.wait(10.0)), print)
    worker.kick()
    for _ in range(200):
        if runs:
            break
        threading.Event().wait(0.01)
    worker.kick()
    worker.kick()  # pending already: coalesced into one more run
    gate.set()
    for _ in range(200):
        if len(runs) == 2 and not worker.busy:
            break
        threading.Event().wait(0.05)
    assert runs == [None, None] and not worker.busy
    assert worker.stop(10.0)
    worker.kick()
    assert not worker.busy
