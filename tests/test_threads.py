"""Thread counts per phase: the search loop runs on one CPU thread unless a count is chosen (eeap.threads)."""

import pytest
import torch

from eeap import threads


@pytest.fixture(autouse=True)
def keep_count():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_search_runs_on_one_thread_and_gives_the_count_back():
    torch.set_num_threads(2)
    with threads.for_search(torch.device("cpu")):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_a_chosen_count_holds_for_every_phase():
    try:
        threads.use(2)
        with threads.for_search(torch.device("cpu")):
            assert torch.get_num_threads() == 2
    finally:
        threads.use(None)


def test_the_search_loop_on_a_gpu_is_left_alone():
    torch.set_num_threads(2)
    with threads.for_search(torch.device("cuda")):
        assert torch.get_num_threads() == 2


def test_no_chosen_count_gives_torchs_default_back():
    """A run that chose a count, then one that chose none in the same process (a notebook, a sweep): the second
    trains on torch's default again, not on the first one's count."""
    threads.use(1)
    assert torch.get_num_threads() == 1
    threads.use(None)
    assert torch.get_num_threads() == threads._DEFAULT
