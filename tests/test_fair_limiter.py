"""The binding gateway's limiter (a share per account, granted in turn) and
its trace buffer."""

import threading

from preview_runtime.gateway import FairLimiter, TraceBuffer


def test_each_key_has_its_share_and_waiting_keys_take_turns():
    limiter = FairLimiter(total=2, per_key=2)
    assert limiter.acquire("noisy", timeout=0)
    assert limiter.acquire("noisy", timeout=0)
    assert not limiter.acquire("noisy", timeout=0)  # over its share
    order: list[str] = []

    def wait(key: str) -> None:
        if limiter.acquire(key, timeout=10):
            order.append(key)

    waiters = [threading.Thread(target=wait, args=("noisy",)) for _ in range(3)]
    for thread in waiters:
        thread.start()
    while sum(len(q) for q in limiter._waiting.values()) < 3:
        threading.Event().wait(0.01)
    quiet = threading.Thread(target=wait, args=("quiet",))
    quiet.start()
    while "quiet" not in limiter._waiting:
        threading.Event().wait(0.01)
    limiter.release("noisy")  # the quiet key's turn comes before noisy's others
    quiet.join(5)
    assert order == ["quiet"]
    assert limiter.held("quiet") == 1 and limiter.held("noisy") == 1
    limiter.release("quiet")
    limiter.release("noisy")
    for thread in waiters[:2]:
        thread.join(0.01)
    while len(order) < 3:
        threading.Event().wait(0.01)
    assert order == ["quiet", "noisy", "noisy"]  # two places: two of noisy's


def test_a_wait_that_runs_out_leaves_no_trace():
    limiter = FairLimiter(total=1, per_key=1)
    assert limiter.acquire("a", timeout=0)
    assert not limiter.acquire("b", timeout=0.05)
    limiter.release("a")
    assert limiter.acquire("b", timeout=0)  # nothing left waiting in b's name
    assert limiter.held("a") == 0


def test_traces_are_sent_together_newest_kept_and_wait_for_their_accounts_turn():
    limiter = FairLimiter(total=4, per_key=1)
    sent: list[tuple[str, list[int]]] = []
    buffer = TraceBuffer(
        send=lambda token, traces: sent.append((token, traces)),
        limiter=limiter,
        per_version=3,
        interval=0.01,
    )
    for n in range(5):
        buffer.add("v1", "account-a", [n])
    buffer.add("v2", "account-b", ["b"])
    assert limiter.acquire("account-a", timeout=0)  # account a is busy
    buffer.flush()
    assert sent == [("v2", ["b"])]
    limiter.release("account-a")
    buffer.flush()
    assert sent[1:] == [("v1", [2, 3, 4])]  # one call, the newest three
    buffer.flush()
    assert len(sent) == 2


def test_traces_held_back_for_a_busy_account_go_before_newer_ones():
    limiter = FairLimiter(total=4, per_key=1)
    sent: list[tuple[str, list[int]]] = []
    buffer = TraceBuffer(
        send=lambda token, traces: sent.append((token, traces)),
        limiter=limiter,
        per_version=3,
        interval=1.0,  # how long a round waits for the busy account's turn
    )
    buffer.add("v1", "account-a", [1, 2])
    assert limiter.acquire("account-a", timeout=0)  # account a is busy
    # Newer traces come while the round waits for a turn that never comes.
    later = threading.Timer(0.2, buffer.add, args=("v1", "account-a", [3, 4]))
    later.start()
    buffer.flush()
    later.join()
    limiter.release("account-a")
    buffer.flush()
    assert sent == [("v1", [2, 3, 4])]  # in order, the newest three
