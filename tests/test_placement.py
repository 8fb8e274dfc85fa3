"""Which runtime takes an account: the least loaded live one, ties to the
first name; a silent runtime takes none; a taken account stays put."""

from datetime import timedelta
from pathlib import Path

import pytest

from accounts.models import PreviewPlacement
from preview_runtime.services import placement

pytestmark = pytest.mark.django_db


def holders(accounts) -> list[str | None]:
    placed = dict(PreviewPlacement.objects.values_list("account_id", "runtime_id"))
    return [placed.get(a.pk) for a in accounts]


@pytest.fixture
def report(now):
    def report(name: str, *, ago: int = 0) -> None:
        placement.report_in(
            name=name, state_dir=Path(f"/srv/{name}"), now=now - timedelta(seconds=ago)
        )

    return report


def test_new_accounts_go_to_the_least_loaded_runtime(provision, now, report):
    report("alpha")
    report("beta")
    accounts = [provision().account for _ in range(3)]
    # beta may not take the first: alpha is as loaded and comes first.
    placement.take_accounts(
        runtime="beta", account_ids=[a.pk for a in accounts], now=now
    )
    assert holders(accounts) == [None, None, None]
    placement.take_accounts(
        runtime="alpha", account_ids=[a.pk for a in accounts], now=now
    )
    assert holders(accounts) == ["alpha", None, None]
    placement.take_accounts(
        runtime="beta", account_ids=[a.pk for a in accounts], now=now
    )
    assert holders(accounts) == ["alpha", "beta", None]
    # Taken accounts stay where they are, whoever asks.
    placement.take_accounts(
        runtime="alpha", account_ids=[a.pk for a in accounts], now=now
    )
    assert holders(accounts) == ["alpha", "beta", "alpha"]
    assert placement.held_by(runtime="beta") == {accounts[1].pk}
    assert placement.state_dir_of(account_id=accounts[1].pk) == Path("/srv/beta")


def test_a_silent_runtime_takes_nothing_and_counts_for_nothing(
    provision, now, report, settings
):
    report("alpha", ago=settings.CLAIMPORTAL_PREVIEW_RUNTIME_LIVE_SECONDS + 1)
    report("beta")
    account = provision().account
    placement.take_accounts(runtime="alpha", account_ids=[account.pk], now=now)
    assert holders([account]) == [None]
    placement.take_accounts(runtime="beta", account_ids=[account.pk], now=now)
    assert holders([account]) == ["beta"]


def test_an_account_no_runtime_holds_is_asked_of_this_install_s_own(
    settings, provision
):
    account = provision().account
    assert placement.state_dir_of(account_id=account.pk) == Path(
        settings.CLAIMPORTAL_PREVIEW_STATE_DIR
    )


def test_a_runtime_that_stopped_takes_nothing_until_it_reports_in(
    provision, now, report
):
    report("alpha")
    report("beta")
    placement.report_out(name="alpha")
    account = provision().account
    placement.take_accounts(runtime="alpha", account_ids=[account.pk], now=now)
    assert holders([account]) == [None]
    placement.take_accounts(runtime="beta", account_ids=[account.pk], now=now)
    assert holders([account]) == ["beta"]
