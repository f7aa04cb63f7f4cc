from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder is missing: expected it at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ag_news_mini(data_root):
    from textrnn import load_ag_news

    return load_ag_news(data_root / "ag_news_mini")
