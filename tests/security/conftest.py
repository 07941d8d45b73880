"""The hostile-input suite runs against real processes: the integration tier's broker, database
and `doseflow worker ...` fixtures (a fresh database and virtual host per test)."""
from tests.integration.conftest import (  # noqa: F401 - fixtures
    clean_broker,
    database_url,
    doseflow_env,
    pytest_runtest_makereport,
    service_urls,
    workers,
)
